"""`build`: everything that needs the network or a compiler, reused when already built.

Pinned Go binaries (the gateway, faas-cli, of-watchdog), our provider
and autoscaler, the Kafka broker's jars and every function image. `make up` builds, then
starts (lifecycle.py); the test profile builds outside its namespace and starts inside it.
"""

from __future__ import annotations

from . import images, lifecycle, toolchain
from .components.kafka import Kafka
from .profile import Profile
from .progress import say


def build(profile: Profile) -> None:
    lifecycle.check_prerequisites(profile, "go")
    profile.ensure_dirs()
    for binary in (toolchain.GATEWAY, toolchain.FAAS_CLI):
        say(f"{binary.name} {binary.tag}: {toolchain.ensure(binary)}")
    say(f"of-watchdog {toolchain.OF_WATCHDOG.tag}: {toolchain.watchdog()}")
    say(f"provider: {toolchain.ensure_provider()}")
    say(f"autoscaler: {toolchain.ensure_autoscaler()}")
    Kafka(profile).fetch()
    say("kafka: jars ready")
    faas_cli = toolchain.bin_path(toolchain.FAAS_CLI.name)
    for stack in images.STACKS:
        for image in images.build_stack(faas_cli, stack, profile):
            say(f"image {image.name} ({stack.name})")
