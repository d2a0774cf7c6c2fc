"""Exactly-once side effects for the Lambdas, with AWS Lambda Powertools' idempotency utility.

Semantics (https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/):
- the first invocation for a key writes an INPROGRESS record whose in-progress expiry is the Lambda's
  remaining time (register_lambda_context), so a timed-out invocation never blocks its retry;
- a duplicate arriving while the first is in progress raises IdempotencyAlreadyInProgressError: the
  invocation fails and Lambda's async retry comes back later, so the work is never lost as a "duplicate";
- a failure deletes the record (the retry does the work); success stores the result, and duplicates
  within IDEMPOTENCY_TTL_HOURS get that stored result without repeating the side effect.
The table is the one lambda.tf declares: hash key idempotency_key, TTL attribute expires_at.
"""

import logging
import os

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

logger = logging.getLogger()

__all__ = ["IdempotencyAlreadyInProgressError", "once"]


_DYNAMODB: dict = {}  # (region, endpoint) -> client: module state, kept by a warm execution environment


def _dynamodb():
    """The DynamoDB client of this execution environment, made on first use and reused by warm invocations
    (Lambda's advice: initialize SDK clients outside the handler; a new client per invocation costs ~0.1 s of
    service-model loading). Keyed by region and endpoint, the two settings a client fixes at creation."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    key = (region, os.environ.get("AWS_ENDPOINT_URL"))
    if key not in _DYNAMODB:
        _DYNAMODB[key] = boto3.client("dynamodb", region_name=region)
    return _DYNAMODB[key]


def once(work, data, context, key_jmespath):
    """Run work(data=data) at most once per idempotency key (JMESPath into data)."""
    table = os.environ.get("IDEMPOTENCY_TABLE", "")
    if not table:
        raise RuntimeError("IDEMPOTENCY_TABLE is not set: without it duplicates and retries cannot be told apart")
    ttl_seconds = int(float(os.environ.get("IDEMPOTENCY_TTL_HOURS", "168")) * 3600)
    persistence = DynamoDBPersistenceLayer(table_name=table, key_attr="idempotency_key", expiry_attr="expires_at",
                                           boto3_client=_dynamodb())
    config = IdempotencyConfig(event_key_jmespath=key_jmespath, raise_on_no_idempotency_key=True,
                               expires_after_seconds=ttl_seconds)
    if context is not None:
        config.register_lambda_context(context)
    return idempotent_function(data_keyword_argument="data", persistence_store=persistence, config=config)(work)(data=data)
