"""The command line every pipeline script exposes: build, then write the definition or upsert.

    python -m pipeline_scripts.<pipeline> [--env-file F] [--config F] [--definition-out FILE] [--no-upload]

Exit codes: 0 done; 2 a user error (pipeline_scripts.errors.UserError: the message names the file, key or
resource); 3 no Approved model version yet (inference without --withdraw-if-none; CI tolerates it on a first
deploy). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pipeline_scripts import console, sdk_adapter
from pipeline_scripts.config import PROJECT_ROOT, BuildOptions, PipelineConfig, load_pipeline_config
from pipeline_scripts.contracts import PIPELINES
from pipeline_scripts.deploy import upload_data, upsert
from pipeline_scripts.errors import UserError

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline

Builder = Callable[[PipelineConfig[Any], "PipelineSession"], "Pipeline"]  # a builder's build(): typed by its SETTINGS_CLASS


def build_parser(kind: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=f"Build and upsert the {kind} SageMaker pipeline.")
    parser.add_argument("--env-file", default=str(PROJECT_ROOT / "env_files" / "dev_env.tfvars"),
                        help="Terraform variables file shared with Terraform (default: %(default)s)")
    parser.add_argument("--config", default=None,
                        help=f"pipeline settings YAML (default: pipeline_scripts/{kind}_pipeline.yaml)")
    parser.add_argument("--definition-out", default=None,
                        help="write the pipeline definition JSON to this file instead of upserting; "
                             "calls no AWS API (no credentials needed)")
    parser.add_argument("--no-upload", action="store_true", help="skip the data upload the tfvars flags ask for")
    if PIPELINES[kind].needs_approved_model:
        add_model_package_options(parser)
    return parser


def add_model_package_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-package-arn", default=None,
                        help="inference: build around this approved model package (the ARN the approval "
                             "deploy passes) instead of the group's latest Approved version")
    parser.add_argument("--model-package-description", default=None, metavar="FILE",
                        help="inference: a DescribeModelPackage response saved as JSON "
                             "(`aws sagemaker describe-model-package`), for --definition-out without AWS")
    parser.add_argument("--withdraw-if-none", action="store_true",
                        help="inference: with no Approved version left (the serving one was rejected), upsert a "
                             "pipeline that refuses every batch with the reason, instead of exiting 3 and "
                             "leaving the rejected model serving")


def run_cli(kind: str, build: Builder, description: str, argv: list[str] | None = None) -> int:
    """The command line of every pipeline script: build, then write the definition or upsert.
    The SDK is loaded after the arguments are parsed (``--help`` needs no region or credentials)."""
    args = build_parser(kind).parse_args(argv)
    console.configure_logging()
    try:
        package_file = getattr(args, "model_package_description", None)  # (options of needs_approved_model only)
        options = BuildOptions(model_package_arn=getattr(args, "model_package_arn", None),
                               model_package_description=Path(package_file) if package_file else None,
                               withdraw_if_none=getattr(args, "withdraw_if_none", False))
        cfg = load_pipeline_config(kind, args.env_file, args.config, options=options)
        definition_only = bool(args.definition_out)
        sdk_adapter.load_sdk(cfg.env.region)
        sdk_adapter.check_sdk_config_once()  # the SDK's config checked once per build, not at every lookup
        sessions = open_sessions(cfg, definition_only=definition_only)
        pipeline = build(cfg, sessions.pipeline)
        if definition_only:  # (an upsert compiles the definition itself: once per command, not twice)
            definition = pipeline.definition()
            Path(args.definition_out).write_text(json.dumps(json.loads(definition), indent=2) + "\n")
            print(f"wrote {args.definition_out}")
            return 0
        arn = upsert(pipeline, cfg, description, sessions)
        print(f"upserted {arn}")
        if not args.no_upload:
            upload_data(cfg, sessions=sessions)
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def open_sessions(cfg: PipelineConfig, definition_only: bool = False) -> sdk_adapter.Sessions:
    """The sessions of one build in the tfvars' region and bucket (shared while sdk_adapter.shared_boto3_sessions
    is open)."""
    return sdk_adapter.open_sessions(cfg.env.region, cfg.env.bucket_name, cfg.env.bucket_prefix, definition_only)


def make_session(cfg: PipelineConfig) -> PipelineSession:
    """A PipelineSession for one build (SDK calls record step arguments instead of starting jobs)."""
    return open_sessions(cfg).pipeline
