#!/usr/bin/env python3
"""Create the service's AWS resources in a running moto server and print the environment a
function needs, for running the Lambda functions locally (see the README).

    .venv/bin/moto_server -H 127.0.0.1 -p 5000 &
    eval "$(.venv/bin/python scripts/moto-resources.py http://127.0.0.1:5000)"

The table layout matches template.yaml and DynamoStore::create_table.
"""
import secrets
import sys

import boto3

endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
suffix = secrets.token_hex(4)
table = f"seyaha-local-{suffix}"

dynamodb = session.client("dynamodb", endpoint_url=endpoint)
keys = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"]
dynamodb.create_table(
    TableName=table,
    BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[
        {
            "IndexName": f"gsi{n}",
            "KeySchema": [{"AttributeName": f"gsi{n}pk", "KeyType": "HASH"}, {"AttributeName": f"gsi{n}sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }
        for n in (1, 2, 3)
    ],
)
dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})

sqs = session.client("sqs", endpoint_url=endpoint)
queue_url = sqs.create_queue(QueueName=f"seyaha-sync-{suffix}")["QueueUrl"]
bulk_queue_url = sqs.create_queue(QueueName=f"seyaha-bulk-{suffix}")["QueueUrl"]
jwt_secret = secrets.token_hex(32)
jwt_secret_id = f"seyaha-jwt-{suffix}"
session.client("secretsmanager", endpoint_url=endpoint).create_secret(Name=jwt_secret_id, SecretString=jwt_secret)

for name, value in {
    "SEYAHA_TABLE_NAME": table,
    "SEYAHA_QUEUE_URL": queue_url,
    "SEYAHA_BULK_QUEUE_URL": bulk_queue_url,
    "SEYAHA_SECRET_PREFIX": f"seyaha-local-{suffix}",
    "SEYAHA_JWT_SECRET_ID": jwt_secret_id,
    "SEYAHA_JWT_SECRET": jwt_secret,
    "SEYAHA_ALLOW_PRIVATE_ENDPOINTS": "true",
    "AWS_ENDPOINT_URL": endpoint,
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}.items():
    print(f"export {name}={value}")
