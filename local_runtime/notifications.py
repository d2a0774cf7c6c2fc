"""SNS topics from the Terraform files, each with an SQS queue subscribed in moto; drained into
<workspace>/outbox/notifications.jsonl and .txt and printed."""
from __future__ import annotations

import json

from .events import now_iso


class Notifications:
    def __init__(self, rt, tf):
        self.rt = rt
        self.queues = {}
        sns, sqs = rt.aws.client("sns"), rt.aws.client("sqs")
        for res in tf.resources.get("aws_sns_topic", {}):
            name = tf.attr("aws_sns_topic", res, "name") or res
            topic_arn = sns.create_topic(Name=name)["TopicArn"]
            qurl = sqs.create_queue(QueueName=f"sm-local-outbox-{name}"[:80])["QueueUrl"]
            qarn = sqs.get_queue_attributes(QueueUrl=qurl, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=qarn)
            self.queues[topic_arn] = qurl
        self.received: list[dict] = []

    def drain(self) -> list[dict]:
        sqs = self.rt.aws.client("sqs")
        got = []
        for topic, qurl in self.queues.items():
            while True:
                msgs = sqs.receive_message(QueueUrl=qurl, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
                if not msgs:
                    break
                for m in msgs:
                    body = json.loads(m["Body"])
                    note = {"received": now_iso(), "topic": topic, "subject": body.get("Subject"),
                            "message": body.get("Message"), "message_id": body.get("MessageId")}
                    got.append(note)
                    sqs.delete_message(QueueUrl=qurl, ReceiptHandle=m["ReceiptHandle"])
        for note in got:
            self.rt.workspace.append_jsonl("outbox/notifications.jsonl", note)
            self.rt.workspace.append_text("outbox/notifications.txt", format_note(note))
            self.rt.say("  ✉ " + format_note(note).rstrip().replace("\n", "\n    "))
        self.received.extend(got)
        return got


def format_note(note: dict) -> str:
    topic = note["topic"].rsplit(":", 1)[-1]
    return f"[{note['received']}] {topic} | {note.get('subject') or '(no subject)'}\n{note.get('message')}\n\n"
