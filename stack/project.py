"""The Pulumi project's name: the config namespace, the tag and label values, the policy pack.

``Pulumi.yaml`` declares it for the CLI; ``tests/stack/test_stack_project.py`` keeps the two equal.
"""

PROJECT = "gpu-inference"
