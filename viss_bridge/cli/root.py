"""The ``viss-bridge`` command group; each command group lives in its own module of this package."""

from __future__ import annotations


import click



@click.group()
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="VISS_BRIDGE_CONFIG",
              help="Settings file (TOML). Environment variables VISS_BRIDGE_* override it.")
@click.version_option(package_name="viss-bridge")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """viss-bridge: generation-II SOAP services answered from the dataset catalog."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


