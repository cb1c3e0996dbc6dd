import { CloudwatchMetricAlarm } from "@cdktf/provider-aws/lib/cloudwatch-metric-alarm";
import { SnsTopic } from "@cdktf/provider-aws/lib/sns-topic";
import { SnsTopicSubscription } from "@cdktf/provider-aws/lib/sns-topic-subscription";
import { Construct } from "../cdk";
import { invalidProp } from "../service/errors";

/** Where the alarms look: a group behind an ALB, or one instance. */
export type AlarmTarget =
  | {
      readonly kind: "group";
      /** The ALB's `arn_suffix` and its target group's (the CloudWatch dimensions). */
      readonly loadBalancerArnSuffix: string;
      readonly targetGroupArnSuffix: string;
      readonly autoScalingGroupName: string;
    }
  | { readonly kind: "instance"; readonly instanceId: string };

/** ServiceAlarms' defaults: the constructor and the props' JSDoc read these. */
export const SERVICE_ALARMS_DEFAULTS = { cpuPercent: 80, errors5xxPerMinute: 10 } as const;

export interface ServiceAlarmsProps {
  /** Service name, for alarm names. */
  readonly name: string;
  readonly target: AlarmTarget;
  /**
   * Send every alarm (and its recovery) to this address through an SNS topic (the address confirms once).
   * @default - alarms without notification (visible in CloudWatch)
   */
  readonly alertEmail?: string;
  /**
   * Average CPU above which, for 10 minutes, the CPU alarm fires.
   * @default 80
   */
  readonly cpuPercent?: number;
  /**
   * 5xx answers per minute (from the load balancer or the machines) above which, 3 minutes running, the 5xx alarm fires.
   * @default 10
   */
  readonly errors5xxPerMinute?: number;
}

/**
 * The alarms a team needs first on AWS: 5xx answers (from the ALB itself or from the machines), unhealthy targets,
 * sustained CPU; for one instance, CPU and its status checks. With `alertEmail`, an encrypted SNS topic mails them.
 */
export class ServiceAlarms extends Construct {
  readonly alarms: CloudwatchMetricAlarm[];
  /** The topic the alarms notify, with `alertEmail`. */
  readonly topic?: SnsTopic;

  constructor(scope: Construct, id: string, props: ServiceAlarmsProps) {
    super(scope, id);
    const cpuPercent = props.cpuPercent ?? SERVICE_ALARMS_DEFAULTS.cpuPercent;
    const errors5xxPerMinute = props.errors5xxPerMinute ?? SERVICE_ALARMS_DEFAULTS.errors5xxPerMinute;
    if (props.alertEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.alertEmail)) {
      invalidProp("ServiceAlarms", "alertEmail", props.alertEmail, "must be an e-mail address");
    }
    if (props.alertEmail !== undefined) {
      this.topic = new SnsTopic(this, "Topic", { namePrefix: `${props.name}-alarms-`, kmsMasterKeyId: "alias/aws/sns" });
      new SnsTopicSubscription(this, "Email", { topicArn: this.topic.arn, protocol: "email", endpoint: props.alertEmail });
    }
    const actions = this.topic ? { alarmActions: [this.topic.arn], okActions: [this.topic.arn] } : {};
    const alarm = (alarmId: string, config: Omit<ConstructorParameters<typeof CloudwatchMetricAlarm>[2], "alarmName">) =>
      new CloudwatchMetricAlarm(this, alarmId, { alarmName: `${props.name}-${alarmId.toLowerCase()}`, ...actions, ...config });
    // Sustained CPU: 10 minutes above the threshold.
    const cpu = (dimensions: Record<string, string>, alarmDescription: string) =>
      alarm("Cpu", {
        alarmDescription,
        namespace: "AWS/EC2",
        metricName: "CPUUtilization",
        dimensions,
        statistic: "Average",
        period: 300,
        evaluationPeriods: 2,
        threshold: cpuPercent,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "missing",
      });
    // Any failure for 3 minutes; no data counts as failing (a machine that stopped reporting is not healthy).
    const failing = (
      alarmId: string,
      namespace: string,
      metricName: string,
      dimensions: Record<string, string>,
      alarmDescription: string,
    ) =>
      alarm(alarmId, {
        alarmDescription,
        namespace,
        metricName,
        dimensions,
        statistic: "Maximum",
        period: 60,
        evaluationPeriods: 3,
        threshold: 0,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "breaching",
      });
    const t = props.target;
    if (t.kind === "group") {
      const lb = { LoadBalancer: t.loadBalancerArnSuffix };
      // 5xx from the balancer itself and from the machines: the same rule on two metrics.
      const errors5xx = (alarmId: string, metricName: string, alarmDescription: string) =>
        alarm(alarmId, {
          alarmDescription,
          namespace: "AWS/ApplicationELB",
          metricName,
          dimensions: lb,
          statistic: "Sum",
          period: 60,
          evaluationPeriods: 3,
          threshold: errors5xxPerMinute,
          comparisonOperator: "GreaterThanThreshold",
          treatMissingData: "notBreaching",
        });
      this.alarms = [
        errors5xx("Lb5xx", "HTTPCode_ELB_5XX_Count", "The load balancer itself answers 5xx (no healthy machine, or it cannot reach them)"),
        errors5xx("Target5xx", "HTTPCode_Target_5XX_Count", "The machines answer 5xx"),
        failing(
          "UnhealthyTargets",
          "AWS/ApplicationELB",
          "UnHealthyHostCount",
          { ...lb, TargetGroup: t.targetGroupArnSuffix },
          "A machine fails the load balancer's health check",
        ),
        cpu(
          { AutoScalingGroupName: t.autoScalingGroupName },
          `The machines' average CPU stays above ${cpuPercent}% (the group is at its maximum, or scaling is too slow)`,
        ),
      ];
    } else {
      const instance = { InstanceId: t.instanceId };
      this.alarms = [
        cpu(instance, `The machine's CPU stays above ${cpuPercent}%`),
        failing("StatusCheck", "AWS/EC2", "StatusCheckFailed", instance, "The instance or its host fails EC2's status checks"),
      ];
    }
  }
}
