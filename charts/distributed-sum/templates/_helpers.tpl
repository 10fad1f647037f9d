{{/*
Names, labels and shared snippets. Kubernetes names are limited to 63 characters, so every name is
truncated; component suffixes are added after truncating the base name to 50.
*/}}

{{- define "distributed-sum.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "distributed-sum.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "distributed-sum.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "distributed-sum.selectorLabels" -}}
app.kubernetes.io/name: {{ include "distributed-sum.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "distributed-sum.labels" -}}
helm.sh/chart: {{ include "distributed-sum.chart" . }}
{{ include "distributed-sum.selectorLabels" . }}
app.kubernetes.io/version: {{ include "distributed-sum.tagText" (.Values.image.tag | default .Chart.AppVersion) | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: distributed-sum
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Usage: include "distributed-sum.componentSelectorLabels" (dict "ctx" $ "component" "sum") */}}
{{- define "distributed-sum.componentSelectorLabels" -}}
{{ include "distributed-sum.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "distributed-sum.componentLabels" -}}
{{ include "distributed-sum.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "distributed-sum.componentName" -}}
{{- printf "%s-%s" (include "distributed-sum.fullname" .ctx | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{- define "distributed-sum.sum.fullname" -}}
{{- include "distributed-sum.componentName" (dict "ctx" . "component" "sum") }}
{{- end }}

{{- /*
The ledger is a StatefulSet: its pods carry the label controller-revision-hash=<name>-<hash of up to
10 characters>, which must fit in 63, so the name stays within 52 (45 + "-ledger").
*/}}
{{- define "distributed-sum.ledger.fullname" -}}
{{- printf "%s-ledger" (include "distributed-sum.fullname" . | trunc 45 | trimSuffix "-") }}
{{- end }}

{{- /* The ledger's data volume, as the StatefulSet's volume claim template names it for its one pod. */}}
{{- define "distributed-sum.ledger.dataClaim" -}}
{{- printf "data-%s-0" (include "distributed-sum.ledger.fullname" .) }}
{{- end }}

{{- define "distributed-sum.ledger.backupClaim" -}}
{{- printf "%s-backups" (include "distributed-sum.ledger.fullname" .) }}
{{- end }}

{{/* Usage: include "distributed-sum.image" (dict "ctx" $ "image" .Values.sum.image) */}}
{{- define "distributed-sum.image" -}}
{{- $tag := include "distributed-sum.tagText" (.image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion) }}
{{- $registry := .ctx.Values.image.registry }}
{{- $repository := ternary (printf "%s/%s" $registry .image.repository) .image.repository (ne $registry "") }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{- define "distributed-sum.imagePullPolicy" -}}
{{- .image.pullPolicy | default .ctx.Values.image.pullPolicy }}
{{- end }}

{{/* The Strimzi Kafka cluster's name; its bootstrap Service is <name>-kafka-bootstrap. */}}
{{- define "distributed-sum.kafka.clusterName" -}}
{{- .Values.kafka.strimzi.clusterName | default (include "distributed-sum.fullname" . | trunc 40 | trimSuffix "-") }}
{{- end }}

{{- define "distributed-sum.kafka.bootstrapServers" -}}
{{- if .Values.kafka.strimzi.enabled }}
{{- printf "%s-kafka-bootstrap:%s" (include "distributed-sum.kafka.clusterName" .) (include "distributed-sum.kafka.strimziPort" .) }}
{{- else }}
{{- required "kafka.externalBootstrapServers is required when kafka.strimzi.enabled is false" .Values.kafka.externalBootstrapServers }}
{{- end }}
{{- end }}

{{- define "distributed-sum.kafka.deadLetterTopic" -}}
{{- .Values.kafka.deadLetterTopic | default (printf "%s.dlq" .Values.kafka.topic) }}
{{- end }}

{{/*
Environment shared by both services: Kafka, logging and tracing. Usage: dict "ctx" $ "service" "sum-svc".
With tracing off no endpoint is set: spans are still recorded, so log lines keep their trace ids.
*/}}
{{- define "distributed-sum.commonEnv" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "distributed-sum.kafka.bootstrapServers" .ctx | quote }}
- name: KAFKA_TOPIC
  value: {{ .ctx.Values.kafka.topic | quote }}
- name: LOG_LEVEL
  value: {{ .ctx.Values.logLevel | quote }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if .ctx.Values.tracing.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .ctx.Values.tracing.otlpEndpoint | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .service | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),service.namespace=$(K8S_NAMESPACE_NAME),service.version=%s" (include "distributed-sum.tagText" (.ctx.Values.image.tag | default .ctx.Chart.AppVersion)) | quote }}
{{- with .ctx.Values.tracing.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with .ctx.Values.tracing.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod-level settings every pod of the chart shares (restricted Pod Security Standard). */}}
{{- define "distributed-sum.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "distributed-sum.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end }}

{{/* Egress rule to Kafka: the Strimzi broker pods, or the external brokers from values. */}}
{{- define "distributed-sum.kafkaEgressRule" -}}
{{- if .Values.kafka.strimzi.enabled -}}
- to:
    - podSelector:
        matchLabels:
          strimzi.io/cluster: {{ include "distributed-sum.kafka.clusterName" . }}
          strimzi.io/kind: Kafka
  ports:
    - port: {{ include "distributed-sum.kafka.strimziPort" . }}
      protocol: TCP
{{- else -}}
- ports:
    {{- toYaml .Values.networkPolicy.externalKafka.ports | nindent 4 }}
  {{- with .Values.networkPolicy.externalKafka.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Egress rule to the OTLP receiver, when traces are exported. The port is the endpoint's own (or its
scheme's default), so changing the endpoint cannot silently drop spans at the policy. */}}
{{- define "distributed-sum.tracingEgressRule" -}}
{{- if .Values.tracing.enabled -}}
{{- $url := urlParse .Values.tracing.otlpEndpoint }}
{{- $hostPort := splitList ":" $url.host }}
{{- $port := ternary (last $hostPort) (ternary "443" "80" (eq $url.scheme "https")) (gt (len $hostPort) 1) }}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.tracing.namespace }}
  ports:
    - port: {{ $port | atoi }}
      protocol: TCP
{{- end }}
{{- end }}

{{/* Peer matching the helm test pods. */}}
{{- define "distributed-sum.testPeer" -}}
- podSelector:
    matchLabels:
      {{- include "distributed-sum.componentSelectorLabels" (dict "ctx" . "component" "test") | nindent 6 }}
{{- end }}

{{/* Peer matching the monitoring namespace (Prometheus). */}}
{{- define "distributed-sum.monitoringPeer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .Values.networkPolicy.monitoringNamespace }}
  {{- with .Values.networkPolicy.monitoringPods }}
  podSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}

{{/* Rules across values that values.schema.json cannot express; rendered (as nothing) by sum-deployment.yaml. */}}
{{- define "distributed-sum.validate" -}}
{{- /* Against a cluster (install, upgrade, --dry-run=server; never plain helm template, where lookup finds
nothing and the cluster's APIs are unknown), objects whose API the cluster does not serve are named
with the way forward instead of failing one by one on the API server. */}}
{{- /* The namespace's default ServiceAccount: the installer may read it (the chart creates ServiceAccounts),
where a cluster-scoped lookup could be forbidden. */}}
{{- if lookup "v1" "ServiceAccount" .Release.Namespace "default" }}
{{- $m := .Values.monitoring }}
{{- if and (or $m.serviceMonitor.enabled $m.prometheusRule.enabled) (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}
{{- fail "this cluster does not serve monitoring.coreos.com/v1 (the Prometheus Operator's ServiceMonitor and PrometheusRule): install kube-prometheus-stack first (make cluster-up does), or set monitoring.serviceMonitor.enabled=false and monitoring.prometheusRule.enabled=false" }}
{{- end }}
{{- if and .Values.kafka.strimzi.enabled (not (.Capabilities.APIVersions.Has "kafka.strimzi.io/v1")) (not (.Capabilities.APIVersions.Has "kafka.strimzi.io/v1beta2")) }}
{{- fail "this cluster does not serve kafka.strimzi.io/v1 (Strimzi's Kafka, KafkaNodePool and KafkaTopic): install the Strimzi operator 0.49 or newer watching this namespace, or set kafka.strimzi.enabled=false and kafka.externalBootstrapServers" }}
{{- end }}
{{- end }}
{{- if and .Values.image.requireRegistry (not .Values.image.registry) }}
{{- fail "image.registry is required here (values-production.yaml): the registry the cluster pulls distributed-sum/sum-svc and distributed-sum/ledger-svc from, e.g. --set image.registry=<registry>/<project>" }}
{{- end }}
{{- if .Values.image.requireDigest }}
{{- range $component := list "sum" "ledger" }}
{{- if not (get (get $.Values $component) "image").digest }}
{{- fail (printf "%s.image.digest is required here (values-production.yaml): a tag can be moved to other contents, a digest cannot. Pin the image you tested, e.g. --set %s.image.digest=sha256:<64 hex digits> (`docker inspect --format '{{index .RepoDigests 0}}' <image>` after pushing it)" $component $component) }}
{{- end }}
{{- end }}
{{- end }}
{{- $sum := .Values.sum }}
{{- if le ($sum.idempotency.ttlSeconds | float64) ($sum.deliveryTimeoutSeconds | float64) }}
{{- fail "sum.idempotency.ttlSeconds must be greater than sum.deliveryTimeoutSeconds" }}
{{- end }}
{{- if lt ($sum.deliveryTimeoutSeconds | float64) ($sum.publishTimeoutSeconds | float64) }}
{{- fail "sum.deliveryTimeoutSeconds must be at least sum.publishTimeoutSeconds" }}
{{- end }}
{{- if gt ($sum.autoscaling.minReplicas | int) ($sum.autoscaling.maxReplicas | int) }}
{{- fail "sum.autoscaling.minReplicas must not exceed sum.autoscaling.maxReplicas" }}
{{- end }}
{{- if eq (int $sum.grpcPort) (int $sum.metricsPort) }}
{{- fail "sum.grpcPort and sum.metricsPort must differ" }}
{{- end }}
{{- if eq (int .Values.ledger.httpPort) (int .Values.ledger.metricsPort) }}
{{- fail "ledger.httpPort and ledger.metricsPort must differ" }}
{{- end }}
{{- $s := .Values.kafka.strimzi }}
{{- if $s.enabled }}
{{- if gt ($s.replicationFactor | int) ($s.replicas | int) }}
{{- fail "kafka.strimzi.replicationFactor must not exceed kafka.strimzi.replicas" }}
{{- end }}
{{- if gt ($s.minInsyncReplicas | int) ($s.replicationFactor | int) }}
{{- fail "kafka.strimzi.minInsyncReplicas must not exceed kafka.strimzi.replicationFactor" }}
{{- end }}
{{- end }}
{{- if eq (include "distributed-sum.kafka.deadLetterTopic" .) .Values.kafka.topic }}
{{- fail "kafka.deadLetterTopic must differ from kafka.topic" }}
{{- end }}
{{- include "distributed-sum.tls.validate" . }}
{{- include "distributed-sum.kafka.validate" . }}
{{- end }}

{{/* KafkaNodePool pod template for spreadNodes: one Kafka node per Kubernetes node, spread over zones. */}}
{{- define "distributed-sum.kafka.spreadTemplate" -}}
{{- $selector := dict "strimzi.io/cluster" (include "distributed-sum.kafka.clusterName" .) "strimzi.io/pool-name" .Values.kafka.strimzi.nodePoolName }}
pod:
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- toYaml $selector | nindent 14 }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- toYaml $selector | nindent 10 }}
{{- end }}

{{/* A service's metrics port (the number given), as a Service port. */}}
{{- define "distributed-sum.metricsServicePort" -}}
- name: metrics
  port: {{ . }}
  targetPort: metrics
  protocol: TCP
  appProtocol: http
{{- end }}

{{/* An image tag as text. helm --set (as skaffold passes tags) reads an all-digit tag, a commit hash say,
as an integer, and a values file as a float64: both are written back digit for digit. */}}
{{- define "distributed-sum.tagText" -}}
{{- if kindIs "float64" . }}{{ printf "%.0f" . }}{{ else }}{{ toString . }}{{ end }}
{{- end }}
