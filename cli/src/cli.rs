//! The command line's shape (clap derive): global kubectl-style flags and
//! one argument struct per command, each with examples in its `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::{parse_duration, parse_percent};
use crate::kubeargs::KubeArgs;

/// Meshlet, a service mesh speaking SMI: install it, check it, mesh
/// workloads, watch their golden metrics, drive canaries.
#[derive(Parser, Debug)]
#[command(name = "meshlet", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    /// kubectl-style connection flags.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  meshlet check --pre                       # can Meshlet be installed here?
  meshlet install | kubectl apply -f -      # install it
  meshlet check                             # is it healthy?
  kubectl get deploy -o yaml | meshlet inject - | kubectl apply -f -
  meshlet stat deploy -n shop               # success rate, rps, latency
  meshlet canary web -n shop --to web-v2    # shift a TrafficSplit step by step
As a kubectl plugin the same commands run as `kubectl meshlet ...`.";

/// Meshlet's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the install manifests, for `| kubectl apply -f -`.
    Install(InstallArgs),
    /// Check that Meshlet can be installed (--pre) or is healthy.
    Check(CheckArgs),
    /// Add the Meshlet proxy to workloads in YAML (files or stdin).
    Inject(InjectArgs),
    /// Show success rate, requests per second and latency from TrafficMetrics.
    Stat(StatArgs),
    /// Shift a TrafficSplit's weight to a backend step by step, rolling back on failure.
    Canary(CanaryArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Print the CLI's version (and the control plane's, when reachable).
    Version(VersionArgs),
}

/// `meshlet install`.
#[derive(Args, Debug, Clone, Default)]
#[command(after_help = "\
Examples:
  meshlet install | kubectl apply --server-side -f -
  meshlet install --image-registry registry.local/meshlet --image-tag 0.1.0 | kubectl apply --server-side -f -
  meshlet install --permissive --inject-failure-policy Fail > meshlet.yaml
The manifests are deploy/meshlet.yaml (the Helm chart charts/meshlet with
default values) with the flags applied; each flag names its chart value.
For options that add objects (metricsApi.enabled, several replicas, a TLS
Secret) use the chart: helm install meshlet charts/meshlet --set ...")]
pub struct InstallArgs {
    #[command(flatten)]
    pub values: crate::install::InstallValues,
}

/// Output format of `check` and `stat`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Output {
    /// Human-readable lines or a table.
    #[default]
    Text,
    /// JSON.
    Json,
}

/// `meshlet check`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  meshlet check --pre       # before installing: API server version, permissions
  meshlet check             # after installing: CRDs, webhooks, operator, metrics API, certificates, proxies
  meshlet check -o json
Exit status: 0 when every check passes, 1 otherwise.")]
pub struct CheckArgs {
    /// Run the pre-install checks instead of the post-install ones.
    #[arg(long)]
    pub pre: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
    /// Certificates expiring sooner than this fail the check (e.g. 30d, 72h).
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub expiry_warning: std::time::Duration,
    /// The proxy version meshed pods should run (default: this CLI's version).
    #[arg(long)]
    pub expected_proxy_version: Option<String>,
}

/// `meshlet inject`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  meshlet inject deploy.yaml | kubectl apply -f -
  kubectl get deploy -n shop -o yaml | meshlet inject - | kubectl apply -f -
  meshlet inject --proxy-image registry.local/meshlet/proxy:dev --native-sidecar false app.yaml
Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods and
Lists are injected exactly as the admission webhook would inject their pods;
other objects pass through unchanged. Objects already injected, hostNetwork
pods and pods annotated meshlet.dev/inject: disabled are left as they are.")]
pub struct InjectArgs {
    /// YAML files to read; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Proxy image (the webhook's --proxy-image).
    #[arg(long)]
    pub proxy_image: Option<String>,
    /// Proxy version recorded in meshlet.dev/proxy-version (default: this CLI's).
    #[arg(long)]
    pub proxy_version: Option<String>,
    /// imagePullPolicy of the injected containers.
    #[arg(long, value_parser = ["Always", "IfNotPresent", "Never"])]
    pub image_pull_policy: Option<String>,
    /// Inject the proxy as a native sidecar (Kubernetes ≥ 1.29).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub native_sidecar: bool,
    /// Where proxies reach the operator's config stream (host:port).
    #[arg(long)]
    pub operator_addr: Option<String>,
    /// Default proxy log level.
    #[arg(long, value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub proxy_log_level: Option<String>,
}

/// The kinds `meshlet stat` reports on.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatKind {
    /// Deployments.
    #[value(alias = "deploy", alias = "deployments")]
    Deployment,
    /// Pods.
    #[value(alias = "po", alias = "pods")]
    Pod,
    /// Namespaces.
    #[value(alias = "ns", alias = "namespaces")]
    Namespace,
    /// TrafficSplits: one row per backend, with its weight.
    #[value(alias = "ts", alias = "trafficsplits")]
    Trafficsplit,
}

/// `meshlet stat`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  meshlet stat deploy -n shop            # every Deployment in shop
  meshlet stat deploy web -n shop
  meshlet stat pod -n shop
  meshlet stat ns                        # every namespace
  meshlet stat ts web -n shop            # one row per backend, with its weight
Numbers come from the SMI TrafficMetrics API, served by meshlet-operator:
/apis/metrics.smi-spec.io/v1alpha1 for deployments, pods and namespaces
(inbound, as the server measured it), the v1alpha2 edges of a TrafficSplit
for its backends (what meshed clients sent to each).")]
pub struct StatArgs {
    /// What to report on: deploy, pod, ns or ts (trafficsplit).
    #[arg(value_enum)]
    pub kind: StatKind,
    /// One object's name; all of the kind when omitted.
    pub name: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

/// `meshlet canary`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  meshlet canary web -n shop --to web-v2
  meshlet canary web -n shop --to web-v2 --step 20 --interval 1m --max-failure-rate 0.5% --max-p99 300ms
  meshlet canary web -n shop --to web-v2 --rollback     # all weight back to the primary now
Each interval the split's TrafficMetrics edge to the canary backend is read
(trafficsplits/NAME/edges, metrics.smi-spec.io/v1alpha2): a failure rate or
p99 above the limits rolls back (all weight to the primary, exit status 1);
otherwise the canary gets --step more percent, until it has 100.
Ctrl-C stops between steps and leaves the last weights written; running the
same command again resumes from them.")]
pub struct CanaryArgs {
    /// The TrafficSplit.
    pub trafficsplit: String,
    /// The backend service to shift traffic to (the canary).
    #[arg(long)]
    pub to: String,
    /// The backend that keeps the rest (the primary); default: the other
    /// backend with the most weight.
    #[arg(long)]
    pub from: Option<String>,
    /// Percent of traffic added to the canary each step (1–100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub step: u8,
    /// Time between steps (e.g. 30s, 1m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: std::time::Duration,
    /// Highest tolerated failure rate of the canary per interval (e.g. 1%, 0.5%).
    #[arg(long, default_value = "1%", value_parser = parse_percent)]
    pub max_failure_rate: f64,
    /// Highest tolerated p99 latency of the canary (e.g. 500ms, 1s).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub max_p99: std::time::Duration,
    /// Requests the canary must serve in an interval for it to count.
    #[arg(long, default_value_t = 1)]
    pub min_requests: u64,
    /// Intervals in a row without enough requests before rolling back.
    #[arg(long, default_value_t = 5)]
    pub max_idle_intervals: u32,
    /// Roll back now (all weight to the primary) and exit.
    #[arg(long)]
    pub rollback: bool,
}

/// `meshlet completion`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  meshlet completion bash > /etc/bash_completion.d/meshlet
  meshlet completion zsh > \"${fpath[1]}/_meshlet\"
  meshlet completion fish > ~/.config/fish/completions/meshlet.fish")]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `meshlet version`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  meshlet version
  meshlet version --client     # no cluster access")]
pub struct VersionArgs {
    /// Only the CLI's version; do not ask the cluster.
    #[arg(long)]
    pub client: bool,
}
