"""The Terraform files as the offline runtime needs them, read through pipeline_scripts.tfmodule (tfparse).

tfparse evaluates the module as Terraform would before apply (variables, locals, functions,
for_each/count expanded, validations). What only exists after apply is filled in here the way AWS
names it: a reference to another resource (tfparse gives the referenced block's id) resolves to
that resource's ARN, computed from its name attributes, this account and the env file's region.
Data sources (caller identity, partition) stay unknown (None): nothing the runtime routes on
depends on them.
"""
from __future__ import annotations

from pathlib import Path

from pipeline_scripts import tfmodule

from .aws import ACCOUNT
from .errors import TerraformError


def _clean(value):
    """Drop tfparse's bookkeeping (__tfmeta and the synthetic id of nested blocks)."""
    if isinstance(value, dict):
        meta = "__tfmeta" in value
        return {k: _clean(v) for k, v in value.items() if k != "__tfmeta" and not (meta and k == "id")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class Terraform:
    """Resource and data instances by type and instance name (`name`, `name[0]`, `name["key"]`)."""

    def __init__(self, root: Path, tfvars: Path | None):
        try:
            self.module = tfmodule.load(root, tfvars)
        except tfmodule.TerraformConfigError as exc:
            raise TerraformError(str(exc)) from None
        errors = self.module.validation_errors()
        if errors:
            raise TerraformError(f"{tfvars}: breaks variables.tf: " + "; ".join(errors))
        self.root = Path(root)
        self.vars = self.module.values
        self.locals = self.module.locals
        self.region = self.vars.get("aws_region") or "us-east-1"
        self.files = sorted(self.root.glob("*.tf"))
        self.resources: dict[str, dict[str, dict]] = {}
        self.data: dict[str, dict[str, dict]] = {}
        self._ids: dict[str, tuple[str, dict]] = {}
        for rtype, blocks in self.module.blocks.items():
            for block in blocks if isinstance(blocks, list) else []:
                meta = block.get("__tfmeta", {})
                if meta.get("type") not in ("resource", "data"):
                    continue
                name = meta["path"].split(".", 2)[-1] if meta["type"] == "data" else meta["path"].split(".", 1)[1]
                body = dict(_clean(block), __file__=meta.get("filename", ""), __line__=meta.get("line_start"))
                (self.resources if meta["type"] == "resource" else self.data).setdefault(rtype, {})[name] = body
                self._ids[block["id"]] = (rtype, body)

    @property
    def pipeline_names(self) -> dict:
        """{contract key: SageMaker pipeline name} (contracts.tf: tfvars pipeline_names or the defaults)."""
        return self.locals["pipeline_names"]

    @property
    def model_package_group_name(self) -> str:
        return self.locals["model_package_group_name"]

    # ---------------------------------------------------------------- interface used by the runtime
    def enabled(self, rtype: str, name: str) -> bool:
        """count = 0 / empty for_each instances do not exist; every listed instance does."""
        return name in self.resources.get(rtype, {})

    def resource_body(self, rtype: str, name: str) -> dict:
        body = self.resources.get(rtype, {}).get(name)
        if body is None:
            raise TerraformError(f"resource {rtype}.{name} is not declared in {', '.join(f.name for f in self.files)}")
        return body

    def attr(self, rtype: str, name: str, key: str, default=None):
        body = self.resource_body(rtype, name)
        return self.resolve(body[key]) if key in body else default

    def eval(self, value, where: str = ""):
        """Values are evaluated already; references to other resources become their ARNs."""
        return self.resolve(value)

    def resolve(self, value):
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str) and value in self._ids:
            rtype, body = self._ids[value]
            return self._computed(rtype, body).get("arn")
        return value

    def resource_attr(self, rtype: str, name: str, rest: list, where: str = ""):
        attr_name = rest[0] if rest else "id"
        body = self.resource_body(rtype, name)
        if attr_name in body:
            return self.resolve(body[attr_name])
        values = self._computed(rtype, body)
        if attr_name not in values:
            raise TerraformError(f"{where}: attribute {rtype}.{name}.{attr_name} cannot be resolved locally")
        return values[attr_name]

    def _computed(self, rtype: str, body: dict) -> dict:
        """Attributes AWS assigns on create, as AWS spells them for this account and region."""
        acct, region = ACCOUNT, self.region

        def nm(*keys):
            return next((body[k] for k in keys if body.get(k)), None)

        computed = {
            "aws_lambda_function": lambda: {"arn": f"arn:aws:lambda:{region}:{acct}:function:{nm('function_name')}",
                                            "id": nm("function_name")},
            "aws_sns_topic": lambda: {"arn": f"arn:aws:sns:{region}:{acct}:{nm('name')}",
                                      "id": f"arn:aws:sns:{region}:{acct}:{nm('name')}"},
            "aws_sqs_queue": lambda: {"arn": f"arn:aws:sqs:{region}:{acct}:{nm('name')}",
                                      "id": f"https://sqs.{region}.amazonaws.com/{acct}/{nm('name')}"},
            "aws_cloudwatch_event_rule": lambda: {"arn": f"arn:aws:events:{region}:{acct}:rule/{nm('name')}",
                                                  "id": nm("name")},
            "aws_iam_role": lambda: {"arn": f"arn:aws:iam::{acct}:role/{nm('name')}", "id": nm("name")},
            "aws_dynamodb_table": lambda: {"arn": f"arn:aws:dynamodb:{region}:{acct}:table/{nm('name')}",
                                           "id": nm("name")},
            "aws_cloudwatch_log_group": lambda: {"arn": f"arn:aws:logs:{region}:{acct}:log-group:{nm('name')}",
                                                 "id": nm("name")},
        }
        return computed[rtype]() if rtype in computed else {}
