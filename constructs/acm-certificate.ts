import { AcmCertificate } from "@cdktf/provider-aws/lib/acm-certificate";
import { AcmCertificateValidation } from "@cdktf/provider-aws/lib/acm-certificate-validation";
import { Route53Record } from "@cdktf/provider-aws/lib/route53-record";
import { type Construct, TerraformIterator } from "./cdk";

/** The TLS policy of every ALB HTTPS listener NodeScale makes: TLS 1.3, and TLS 1.2 with forward-secret AEAD ciphers only. */
export const ALB_TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/** An ACM certificate for one domain, DNS-validated, and the wait for its issue. */
export interface DomainCertificate {
  readonly certificate: AcmCertificate;
  /** Completes once ACM has issued it (its DNS validation record exists); use its `certificateArn`. */
  readonly issued: AcmCertificateValidation;
  /** The validation records, when a hosted zone was given. */
  readonly records: Route53Record[];
}

/**
 * An ACM certificate for `domain` that ACM renews by itself. With a Route 53 zone the validation record is created
 * there; without one, the caller outputs `certificate.domainValidationOptions` and the deploy waits until someone
 * creates it. Shared by the ALB of a VM group and the EKS Ingress's ALB.
 */
export function domainCertificate(
  scope: Construct,
  domain: string,
  route53ZoneId: string | undefined,
  tags: Readonly<Record<string, string>>,
  extraRecords: Route53Record[] = [],
): DomainCertificate {
  const certificate = new AcmCertificate(scope, "Certificate", {
    domainName: domain,
    validationMethod: "DNS",
    tags: { ...tags },
    lifecycle: { createBeforeDestroy: true },
  });
  const records: Route53Record[] = [];
  if (route53ZoneId !== undefined) {
    const options = TerraformIterator.fromComplexList(certificate.domainValidationOptions, "domain_name");
    records.push(
      new Route53Record(scope, "CertificateValidationRecord", {
        forEach: options,
        zoneId: route53ZoneId,
        name: options.getString("resource_record_name"),
        type: options.getString("resource_record_type"),
        records: [options.getString("resource_record_value")],
        ttl: 60,
        allowOverwrite: true,
      }),
    );
  }
  // Waits until ACM has issued the certificate (DNS validated); ACM renews it from then on.
  const issued = new AcmCertificateValidation(scope, "CertificateIssued", {
    certificateArn: certificate.arn,
    dependsOn: [...records, ...extraRecords],
  });
  return { certificate, issued, records };
}
