# The template's contracts (pipelines, step names by role, markers) and the data set's name, read
# from the same files as the Python side (pipeline_scripts/contracts.py, config.py). Providerless:
# tests/component/test_terraform.py plans this file with variables.tf to check the tfvars rules offline.
locals {
  contracts    = jsondecode(file("${path.module}/contracts/pipelines.json"))
  artifacts    = jsondecode(file("${path.module}/scripts/steplib/artifacts.json"))
  dataset_name = jsondecode(file("${path.module}/scripts/dataset_schema.json")).name

  # Pipeline names: var.pipeline_names overrides per key, otherwise "<data set>-<name_suffix>".
  pipeline_names = {
    for key, p in local.contracts.pipelines : key => lookup(var.pipeline_names, key, "${local.dataset_name}-${p.name_suffix}")
  }
  model_package_group_name = var.model_package_group_name != "" ? var.model_package_group_name : "${local.dataset_name}-${local.contracts.model_package_group.name_suffix}"
}
