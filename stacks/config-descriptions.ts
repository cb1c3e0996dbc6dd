// What each key of nodescale.config.json means, for editors (the JSON Schema's `description`). A test fails when a
// key has none, or when a description names a key the schema no longer has, so the two cannot drift apart.

export const CONFIG_DESCRIPTIONS: Readonly<Record<string, string>> = {
  $schema: "Path or URL of this JSON Schema, so editors validate and explain the file.",
  service: "The service, described once; every target (local, EC2, Droplet, EKS, DOKS) renders from it.",
  "service.name": "Service name: a DNS label. Names PM2 apps, Nginx upstreams, machines, the Kubernetes namespace and cloud resources.",
  "service.port": "Port the Node.js process listens on (PORT). In fork mode the processes take this port and the ones after it.",
  "service.metricsPort":
    "Port of the metrics listener (METRICS_PORT): Prometheus text for every process of a machine or pod. Loopback on VMs, the pod's own address on Kubernetes (cluster-internal); never routed by Nginx or the Ingress.",
  "service.workers": 'Processes per machine: "auto" for one per CPU core, or a fixed number. Kubernetes runs one per pod instead.',
  "service.shutdownGraceSeconds":
    "How long in-flight requests may take to finish after SIGTERM/SIGINT (SHUTDOWN_GRACE_SECONDS). PM2's kill timeout, the load balancers' draining and the pod's termination grace are derived from it.",
  "service.healthPath":
    "Liveness path: 200 while the process works. PM2, load balancers and Kubernetes restart or route around a process that fails it.",
  "service.readyPath":
    "Readiness path: 200 only when the process can take traffic, 503 while it drains. Rollouts and load balancers wait for it.",
  "service.memoryMiB": "Memory per process in MiB: the pod's request and limit; PM2 restarts a process above 90% of it.",
  "service.cpuMillicores": "CPU per process in millicores: the pod's request; the HPA's utilisation is measured against it.",
  "service.maxBodySizeMiB": "Largest request body Nginx and the Ingress accept, in MiB.",
  "service.domain":
    "The DNS name clients use. With 2+ machines the load balancer serves HTTPS for it (ACM on AWS; a DigitalOcean Let's Encrypt certificate, DNS managed by DigitalOcean), redirects HTTP and sends HSTS.",
  "service.secrets":
    'Environment variables whose values are secrets, as references only: "ssm:/path" (SSM SecureString), "secretsmanager:<arn>", "env:NAME" (the deploying shell). Values never enter the config, user data or synthesized files.',
  "service.clientLimits":
    "Per-client limits Nginx enforces where a target turns them on (cloud VMs by default, local when local.clientLimits): beyond them, 429 with Retry-After.",
  "service.clientLimits.requestsPerSecond": "Sustained requests per second one client address may send.",
  "service.clientLimits.burst": "Requests above that rate one client may send at once (served without delay) before it gets 429.",
  "service.clientLimits.connections": "Connections one client address may hold open at once.",
  "service.source": "Your app's folder (absolute, or relative to this file). Default: NodeScale's sample app.",
  "service.start": 'Entry file inside service.source that node runs, e.g. "dist/server.js". Default: package.json "main", else index.js.',
  "service.build": 'npm script run before packaging (after npm ci), or false for none. Default: "build" when the app has one.',
  "service.signalsReady":
    'Whether the app calls process.send("ready") once it listens; PM2 then waits for that message instead of the port. Default: false for your app, true for the sample.',
  "service.nodeVersion":
    "Node.js LTS major that VMs install and the image runs (22 or 24), each pinned to a patch release whose download is verified against a checksum NodeScale pins. Local deploys use the Node.js on your PATH.",
  "service.env": "Plain environment variables for the app (not secrets: this file and the synthesized config are not secret stores).",
  local: "The local target: the VM topology on this machine (Nginx + PM2 on 127.0.0.1), `npm run local`.",
  "local.port": "Loopback port the local service is reached on (its Nginx, or the local load balancer with 2+ machines).",
  "local.https":
    "Serve HTTPS too, with a certificate from a CA the deploy generates under .nodescale/<instance>/tls (output ca_cert). Turn off by name with false.",
  "local.clientLimits":
    "Enforce service.clientLimits on the local stack too (off by default, so that a load test through it measures the service).",
  "local.httpsPort": "Loopback port of the HTTPS listener (HTTP/2, TLS 1.2+, the TLS settings cloud VMs get).",
  "local.machines": "Simulated machines, each its own Nginx and PM2; 2 or more run behind a local load balancer and roll one at a time.",
  vm: "The VM targets: EC2 (`vm-pm2`) and Droplets (`vm-pm2-do`), Nginx in front of PM2.",
  "vm.mode": '"cluster": PM2 cluster mode, all processes on one port. "fork": one process per port behind an Nginx upstream.',
  "vm.machines": "Machines. 1: one machine with its own public address. 2 or more: behind a load balancer, rolled one at a time.",
  "vm.minMachines": "Fewest machines CPU autoscaling keeps (2+ machines). Default: vm.machines.",
  "vm.maxMachines": "Most machines CPU autoscaling may run (2+ machines). Default: vm.machines.",
  "vm.nodeMirror":
    "Where the machines download Node.js: https://nodejs.org/dist (default) or your mirror of it (same layout). The pinned SHA-256 of the release is checked either way.",
  "vm.keepReleases":
    "Releases each machine keeps on disk for a quick roll back, the current one included (default 3); the machine agent removes older ones after each deploy.",
  "vm.clientLimits":
    "Enforce service.clientLimits on the VMs' Nginx (behind a load balancer, per address the balancer saw). Turn off by name with false.",
  "vm.acmeServer":
    "With service.domain on one machine (EC2, or a Droplet with a deploy key): the ACME directory its certificate comes from (Let's Encrypt; its staging directory to try things out, or your own ACME CA).",
  "vm.acmeEmail": "With service.domain on one machine: e-mail for the ACME account. Default: none.",
  "vm.alertEmail":
    "EC2: mail the CloudWatch alarms (5xx, unhealthy targets, CPU; one machine: CPU and status checks) to this address through an encrypted SNS topic. Default: alarms without notification.",
  "vm.targetCpuPercent": "Average CPU utilisation the machine autoscaling aims at.",
  "vm.aws": "EC2 settings (`cdktf deploy vm-pm2`).",
  "vm.aws.region": "AWS region.",
  "vm.aws.instanceType": "EC2 instance type.",
  "vm.aws.route53ZoneId":
    "The Route 53 zone of service.domain. 2+ machines: the certificate's validation record and the alias to the load balancer are created there (without it, create them yourself: output certificate_validation). One machine: an A record to its Elastic IP (without it, point the domain at the public_ip output).",
  "vm.aws.logRetentionDays": "Days CloudWatch Logs keeps the machines' PM2 and Nginx logs (log group /nodescale/<service.name>).",
  "vm.aws.sshCidrs": "Addresses allowed to SSH in (never the whole internet). Default: none; use SSM Session Manager.",
  "vm.aws.vpcId": "An existing VPC to deploy into, with vm.aws.subnetId. Default: a new VPC.",
  "vm.aws.subnetId": "An existing public subnet of vm.aws.vpcId for the machine.",
  "vm.aws.rootVolumeGiB": "Size of the machine's encrypted root volume in GiB.",
  "vm.digitalocean": "Droplet settings (`cdktf deploy vm-pm2-do`).",
  "vm.digitalocean.region": "DigitalOcean region slug.",
  "vm.digitalocean.size": "Droplet size slug.",
  "vm.digitalocean.sshKeyFingerprints": "Fingerprints of SSH keys already in your DigitalOcean account to install on the Droplets.",
  "vm.digitalocean.sshCidrs": "Addresses the cloud firewall lets reach SSH (never the whole internet). Default: none.",
  "vm.digitalocean.deployKey":
    "Push releases to the Droplets over SSH and roll them out in place (seconds, any size) instead of a new Droplet per release in user data (64 KiB at most). Needs sshCidrs to include the address you deploy from.",
  "vm.digitalocean.deployKey.publicKey":
    "The deploy key's public half (the .pub line): installed for a user that may only hand a release to the machine.",
  "vm.digitalocean.deployKey.privateKeyFile":
    "Path of the private key on the machine that runs cdktf deploy (~ allowed). It never leaves that machine; a deploy without it stops at plan.",
  kubernetes: "The Kubernetes targets: EKS (`eks`) and DOKS (`doks`), one Node.js process per pod.",
  "kubernetes.minReplicas": "Fewest pods; 2 or more keeps the service up through a node drain.",
  "kubernetes.maxReplicas": "Most pods the HorizontalPodAutoscaler may run.",
  "kubernetes.targetCpuPercent": "Average CPU utilisation (of requests) the HorizontalPodAutoscaler aims at.",
  "kubernetes.preStopSeconds": "Delay before a pod is told to stop, so endpoints and load balancers stop routing to it first.",
  "kubernetes.host": "Host name the Ingress answers to. Default: any host.",
  "kubernetes.tlsSecretName": "Secret holding the TLS certificate for kubernetes.host.",
  "kubernetes.restrictEgress":
    "Default-deny egress for the pods: only cluster DNS and kubernetes.egress (no instance metadata, no Kubernetes API, no internet). Turn off by name with false.",
  "kubernetes.serviceMonitor.labels":
    "Labels on the ServiceMonitor, for a Prometheus that selects monitors by label (kube-prometheus-stack: release: <its release name>).",
  "kubernetes.serviceMonitor":
    'A Prometheus Operator ServiceMonitor for the metrics port: { "labels": {...} } (the labels your Prometheus selects monitors by), or false (default; the pods still carry the prometheus.io/scrape annotations). Needs the operator\'s CRDs in the cluster.',
  "kubernetes.egress":
    'Where the pods may connect besides DNS: a list of { "cidr": an IPv4 or IPv6 range, "ports": its TCP ports }, e.g. your database\'s subnet and 5432.',
  "kubernetes.cluster": "Your own cluster (`cdktf deploy k8s`): NodeScale deploys only the workload onto it, through your kubeconfig.",
  "kubernetes.cluster.context": "The kubeconfig context of your cluster. Required by the k8s stack (its plan stops without it).",
  "kubernetes.cluster.kubeconfig": "The kubeconfig file on the machine that deploys.",
  "kubernetes.cluster.repository":
    "Image repository (no tag) the k8s stack builds your app into and pushes to, with your Docker credentials (~/.docker/config.json). Not needed when `image` is set.",
  "kubernetes.cluster.ingressClassName": "IngressClass of the controller already in your cluster.",
  "kubernetes.cluster.ingressNamespace": "Namespace of that controller: the only source of traffic the NetworkPolicy admits.",
  "kubernetes.eks": "EKS cluster settings.",
  "kubernetes.eks.region": "AWS region.",
  "kubernetes.eks.version": 'Kubernetes minor version, pinned, e.g. "1.35".',
  "kubernetes.eks.nodeInstanceType": "EC2 instance type of the managed node group.",
  "kubernetes.eks.minNodes": "Node group lower bound.",
  "kubernetes.eks.desiredNodes": "Node group starting size.",
  "kubernetes.eks.maxNodes": "Node group upper bound.",
  "kubernetes.eks.zones": "Availability zones the VPC spans; the region must have that many (plan stops otherwise).",
  "kubernetes.eks.vpcCidr": "VPC CIDR; each zone gets a public and a private /20.",
  "kubernetes.eks.natGateways": '"single" NAT gateway (cheaper) or "perZone" (survives a zone outage).',
  "kubernetes.eks.publicAccessCidrs":
    "Addresses allowed to reach the cluster's public API endpoint. Default: none, the endpoint is private.",
  "kubernetes.eks.vpcId": "An existing VPC for the cluster, with kubernetes.eks.privateSubnetIds and publicSubnetIds. Default: a new VPC.",
  "kubernetes.eks.privateSubnetIds": "Private subnets of kubernetes.eks.vpcId for the nodes (two or more zones, with a NAT route out).",
  "kubernetes.eks.publicSubnetIds": "Public subnets of kubernetes.eks.vpcId for the load balancer (two or more zones).",
  "kubernetes.eks.route53ZoneId":
    "With service.domain (or kubernetes.host): the Route 53 zone where the ACM certificate's validation record is created. Without it, create it yourself (output certificate_validation).",
  "kubernetes.doks": "DOKS cluster settings.",
  "kubernetes.doks.region": "DigitalOcean region slug.",
  "kubernetes.doks.versionPrefix": 'Kubernetes minor version prefix, e.g. "1.35."; patch releases are applied in the maintenance window.',
  "kubernetes.doks.nodeSize": "Droplet size slug of the node pool.",
  "kubernetes.doks.minNodes": "Node pool lower bound (the pool autoscales).",
  "kubernetes.doks.maxNodes": "Node pool upper bound.",
  "kubernetes.doks.haControlPlane": "A highly available control plane (billed by DigitalOcean).",
  "kubernetes.doks.acmeServer":
    "With service.domain (or kubernetes.host): the ACME directory cert-manager gets the Ingress's certificate from (Let's Encrypt by default).",
  "kubernetes.doks.acmeEmail": "With service.domain: e-mail on cert-manager's ACME account. Default: none.",
  "kubernetes.doks.vpcCidr": "CIDR of the cluster's own VPC.",
  "kubernetes.doks.maintenanceDay": "Day of the weekly maintenance window.",
  "kubernetes.doks.maintenanceStartTime": 'Start of the maintenance window, a whole hour in UTC, e.g. "04:00".',
  image:
    "A prebuilt image of your app, pinned by tag or digest, for the Kubernetes targets. Default: the image is built from the app and pushed.",
  state: 'Where Terraform state lives: "local" files, or an S3 (or DigitalOcean Spaces) bucket. State holds secrets: protect it.',
  "state.backend": '"local" or "s3".',
  "state.kmsKeyId": "ARN of the KMS key (or alias) that encrypts the state object; state holds secrets. Default: S3's own key.",
  "state.bucket": "S3 (or Spaces) bucket for the state.",
  "state.keyPrefix": "Key prefix; each stack's state is <keyPrefix>/<stack>.tfstate.",
  "state.region": "The bucket's region.",
  "state.endpoint": "For DigitalOcean Spaces (S3-compatible), e.g. https://nyc3.digitaloceanspaces.com.",
};
