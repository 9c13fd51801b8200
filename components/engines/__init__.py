"""The engine registry: one ``Engine`` per ``engine.type`` of the config.

``register(engine)`` adds one (an engine module calls it on import), ``engine_for(model)`` is
what the server pod asks, ``unregister(name)`` takes one out again (tests). vLLM and NIM are
registered here; see ``components.engines.base`` for what an engine provides.
"""

from __future__ import annotations

from components.engines.base import Engine, EngineSecret
from stack.placement import ModelPlacement

ENGINES: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    ENGINES[engine.name] = engine
    return engine


def unregister(name: str) -> None:
    ENGINES.pop(name, None)


def engine_for(model: ModelPlacement) -> Engine:
    try:
        return ENGINES[model.engine]
    except KeyError:
        raise ValueError(
            f"{model.name}: engine {model.engine!r} has config options but no registered engine "
            f"(registered: {', '.join(sorted(ENGINES))})"
        ) from None


from components.engines import nim, vllm  # noqa: E402 - they register themselves

__all__ = ["ENGINES", "Engine", "EngineSecret", "engine_for", "nim", "register", "unregister", "vllm"]
