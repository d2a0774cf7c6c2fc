"""The template's contracts (pipelines, step names, markers), read from ``contracts/pipelines.json``.

``contracts/pipelines.json`` (the repository's ``contracts/`` folder) is the single source: Terraform
reads it with ``jsondecode(file(...))``, the Lambdas get the parts they need as environment variables set by
Terraform, the step scripts get them as arguments from the builders, and everything in Python
imports them from here. Nothing else spells a pipeline key, a step name or a marker.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

CONTRACTS_FILE = Path(__file__).resolve().parent.parent / "contracts" / "pipelines.json"
_SHOWN = "contracts/pipelines.json"  # how messages name it (relative to the repository root)


@dataclass(frozen=True)
class PipelineContract:
    key: str            # canonical key: CLI short name, CI job suffix, Terraform for_each key
    builder: str        # module with build_pipeline()/main()
    settings: str       # YAML of SageMaker settings, relative to the repository root
    name_suffix: str    # default pipeline name = <dataset name>-<name_suffix>
    description: str
    started_by: Mapping
    needs_approved_model: bool = False
    aliases: tuple[str, ...] = ()  # further short names (the sm-local CLI's "hpo")


@dataclass(frozen=True)
class Contracts:
    pipelines: Mapping[str, PipelineContract]
    steps: Mapping[str, str]
    markers: Mapping[str, str]
    prediction_baseline: Mapping[str, str]  # statistics|constraints -> the model package's CustomerMetadataProperties key

    def step(self, role: str) -> str:
        try:
            return self.steps[role]
        except KeyError:
            raise KeyError(f"{_SHOWN}: no step role {role!r} (known: {', '.join(sorted(self.steps))})") from None

    def pipeline_key(self, name: str) -> str | None:
        """The canonical key of a pipeline key or alias; None for anything else."""
        for key, contract in self.pipelines.items():
            if name == key or name in contract.aliases:
                return key
        return None

    def pipeline(self, key: str) -> PipelineContract:
        try:
            return self.pipelines[key]
        except KeyError:
            raise KeyError(f"{_SHOWN}: no pipeline {key!r} (known: {', '.join(self.pipelines)})") from None


@lru_cache(maxsize=None)
def load(path: Path = CONTRACTS_FILE) -> Contracts:
    raw = json.loads(Path(path).read_text())
    pipelines = {k: PipelineContract(key=k, **dict(v, aliases=tuple(v.get("aliases", ()))))
                 for k, v in raw["pipelines"].items()}
    names = [n for p in pipelines.values() for n in (p.key, *p.aliases)]
    taken = sorted({n for n in names if names.count(n) > 1})
    if taken:
        raise ValueError(f"{path}: pipeline key(s) or alias(es) {', '.join(taken)} name more than one pipeline")
    return Contracts(pipelines=MappingProxyType(pipelines), steps=MappingProxyType(dict(raw["steps"])),
                     markers=MappingProxyType(dict(raw["markers"])),
                     prediction_baseline=MappingProxyType(dict(raw["model_package_group"]["prediction_baseline"])))


CONTRACTS = load()
STEPS = CONTRACTS.steps
MARKERS = CONTRACTS.markers
PIPELINES = CONTRACTS.pipelines
PREDICTION_BASELINE = CONTRACTS.prediction_baseline
