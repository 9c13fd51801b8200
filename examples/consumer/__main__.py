"""An application team's stack that uses a model served by the gpu-inference stack.

It reads the gpu-inference stack's outputs through a StackReference, typed by
``stack.outputs.read_stack_outputs``, and publishes the endpoint of one model to its own
namespace as a ConfigMap (``OPENAI_BASE_URL``, ``OPENAI_MODEL``). The inference stack hands out
endpoints only: this program reaches the cluster with the team's own access, the default
Kubernetes provider, which reads the ambient kubeconfig (``KUBECONFIG`` or ``~/.kube/config``,
context from ``pulumi config set kubernetes:context ...``). Its namespace must be one of the
``clientNamespaces`` of the inference stack, or the servers' NetworkPolicy drops its traffic.

The helper lives in this repository (``stack/outputs.py``: pulumi and pydantic only); a team
elsewhere copies that file or installs it as a package. How to run it: README.md here.
"""

import pulumi
import pulumi_kubernetes as k8s

from stack.outputs import StackOutputs, read_stack_outputs

config = pulumi.Config()
model_name = config.require("model")
namespace = config.get("namespace") or "apps"

_, outputs = read_stack_outputs(config.require("inferenceStack"))


def endpoint(out: StackOutputs):
    if model_name not in out.models:
        served = ", ".join(sorted(out.models))
        raise pulumi.RunError(f"gpu-inference-consumer:model: {model_name!r} is not served; served models are {served}")
    return out.models[model_name]


model = outputs.apply(endpoint)
k8s.core.v1.ConfigMap(
    "llm-endpoint",
    metadata={"name": "llm-endpoint", "namespace": namespace},
    data={
        "OPENAI_BASE_URL": model.apply(lambda m: m.url),
        "OPENAI_MODEL": model.apply(lambda m: m.served_model_name),
    },
)

pulumi.export("url", model.apply(lambda m: m.url))
pulumi.export("servedModelName", model.apply(lambda m: m.served_model_name))
pulumi.export("tensorParallelSize", model.apply(lambda m: m.tensor_parallel_size))
