"""What a stack left in moto: every resource of the kinds NodeScale's AWS stacks create, as JSON ({} when nothing).

Run with the moto virtualenv's python (boto3 comes with moto): python moto-leftovers.py http://127.0.0.1:PORT
Defaults moto creates by itself (the default VPC, its subnets, security group, route table) are not leftovers.
"""

import json
import sys

import boto3

endpoint = sys.argv[1]
session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")


def client(name):
    return session.client(name, endpoint_url=endpoint)


ec2 = client("ec2")
default_vpcs = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")}
found = {
    "ec2 instances": [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    ],
    "vpcs": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["VpcId"] not in default_vpcs],
    "subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["VpcId"] not in default_vpcs],
    "security groups": [
        g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["VpcId"] not in default_vpcs
    ],
    "internet gateways": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]],
    "elastic ips": [a.get("AllocationId") for a in ec2.describe_addresses()["Addresses"]],
    "launch templates": [t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]],
    "s3 buckets": [b["Name"] for b in client("s3").list_buckets()["Buckets"]],
    "iam roles": [r["RoleName"] for r in client("iam").list_roles()["Roles"]],
    "iam instance profiles": [p["InstanceProfileName"] for p in client("iam").list_instance_profiles()["InstanceProfiles"]],
    "iam policies": [p["PolicyName"] for p in client("iam").list_policies(Scope="Local")["Policies"]],
    "ssm parameters": [p["Name"] for p in client("ssm").describe_parameters()["Parameters"]],
    "ssm associations": [a["Name"] for a in client("ssm").list_associations()["Associations"]],
    "log groups": [g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]],
    "alarms": [a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]],
    "sns topics": [t["TopicArn"] for t in client("sns").list_topics()["Topics"]],
    "autoscaling groups": [
        g["AutoScalingGroupName"] for g in client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    ],
    "load balancers": [lb["LoadBalancerName"] for lb in client("elbv2").describe_load_balancers()["LoadBalancers"]],
    "target groups": [t["TargetGroupName"] for t in client("elbv2").describe_target_groups()["TargetGroups"]],
}
print(json.dumps({kind: names for kind, names in found.items() if names}, indent=1, sort_keys=True))
