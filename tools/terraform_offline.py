"""Running the terraform binary without network: providers from a filesystem mirror only.

Used by tests/component/test_terraform.py (init/validate/plan) and tools/tf_refactor_check.py (apply/plan against
moto). The mirror holds hashicorp/aws at the version versions.tf allows (TF_PROVIDER_MIRROR, default
/opt/tf-plugins); CI's validate job runs against the registry instead.
"""
from __future__ import annotations

import os
from pathlib import Path

MIRROR = Path(os.environ.get("TF_PROVIDER_MIRROR", "/opt/tf-plugins"))
CLI_CONFIG = """provider_installation {
  filesystem_mirror {
    path    = "%s"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
"""


def terraform_env(workdir: Path, module: Path | None = None) -> dict:
    """Environment for `terraform` calls: the mirror-only CLI config (written into workdir), no prompts, no
    checkpoint calls; with module, its .terraform data dir kept inside the module copy."""
    (workdir / "cli.tfrc").write_text(CLI_CONFIG % MIRROR)
    env = dict(os.environ, TF_CLI_CONFIG_FILE=str(workdir / "cli.tfrc"), TF_IN_AUTOMATION="1", TF_INPUT="0",
               CHECKPOINT_DISABLE="1")
    if module is not None:
        env["TF_DATA_DIR"] = str(module / ".terraform")
    return env
