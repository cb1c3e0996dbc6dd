import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { SsmAssociation } from "@cdktf/provider-aws/lib/ssm-association";
import { SsmParameter } from "@cdktf/provider-aws/lib/ssm-parameter";
import { Construct } from "../cdk";
import { invalidProp } from "../service/errors";
import { VM_LOG_DIR } from "./provision";

/** MachineLogs' defaults: the constructor and the props' JSDoc read these. */
export const MACHINE_LOGS_DEFAULTS = { retentionDays: 30 } as const;

/** Retention periods CloudWatch Logs accepts. */
export const RETENTION_DAYS: readonly number[] = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export interface MachineLogsProps {
  /** Service name: the log group is /nodescale/<name>. */
  readonly name: string;
  /** The machines' role (gets exactly the rights to write to this log group and read the agent's settings). */
  readonly roleId: string;
  /** Which machines run the agent: the `nodescale:service` tag's value. */
  readonly serviceTag: string;
  /**
   * Days CloudWatch keeps the lines.
   * @default 30
   */
  readonly retentionDays?: number;
}

/**
 * PM2's and Nginx's logs shipped to CloudWatch Logs by the CloudWatch agent: installed on the machines (found by tag)
 * through SSM's AWS-ConfigureAWSPackage, configured from an SSM parameter through AmazonCloudWatch-ManageAgent, so no
 * download URL or secret is in user data. The role may write to this log group only and read that one parameter.
 */
export class MachineLogs extends Construct {
  readonly logGroup: CloudwatchLogGroup;
  /** The agent's settings (no secrets in them). */
  readonly agentConfig: SsmParameter;

  constructor(scope: Construct, id: string, props: MachineLogsProps) {
    super(scope, id);
    const retentionDays = props.retentionDays ?? MACHINE_LOGS_DEFAULTS.retentionDays;
    if (!RETENTION_DAYS.includes(retentionDays)) {
      invalidProp("MachineLogs", "retentionDays", retentionDays, `must be one of CloudWatch's periods: ${RETENTION_DAYS.join(", ")}`);
    }
    const groupName = `/nodescale/${props.name}`;
    this.logGroup = new CloudwatchLogGroup(this, "LogGroup", { name: groupName, retentionInDays: retentionDays });
    const file = (path: string, stream: string) => ({
      file_path: path,
      log_group_name: groupName,
      log_stream_name: `{instance_id}/${stream}`,
    });
    this.agentConfig = new SsmParameter(this, "AgentConfig", {
      name: `/nodescale/${props.name}/cloudwatch-agent`,
      type: "String",
      value: JSON.stringify({
        agent: { run_as_user: "root" },
        logs: {
          logs_collected: {
            files: {
              collect_list: [
                file(`${VM_LOG_DIR}/*.log`, "pm2"),
                file("/var/log/nginx/access.log", "nginx-access"),
                file("/var/log/nginx/error.log", "nginx-error"),
              ],
            },
          },
        },
      }),
    });
    const write = new DataAwsIamPolicyDocument(this, "WriteLogs", {
      statement: [
        {
          actions: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
          resources: [`${this.logGroup.arn}:*`],
        },
        { actions: ["ssm:GetParameter"], resources: [this.agentConfig.arn] },
      ],
    });
    new IamRolePolicy(this, "WriteLogsPolicy", { role: props.roleId, policy: write.json });
    const targets = [{ key: "tag:nodescale:service", values: [props.serviceTag] }];
    const install = new SsmAssociation(this, "InstallAgent", {
      name: "AWS-ConfigureAWSPackage",
      associationName: `${props.name}-cloudwatch-agent-install`,
      targets,
      parameters: { action: "Install", name: "AmazonCloudWatchAgent" },
    });
    new SsmAssociation(this, "ConfigureAgent", {
      name: "AmazonCloudWatch-ManageAgent",
      associationName: `${props.name}-cloudwatch-agent-configure`,
      targets,
      parameters: {
        action: "configure",
        mode: "ec2",
        optionalConfigurationSource: "ssm",
        optionalConfigurationLocation: this.agentConfig.name,
        optionalRestart: "yes",
      },
      dependsOn: [install],
    });
  }
}
