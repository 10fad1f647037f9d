{{/* The app release's full name, derived as the app chart derives it (distributed-sum.fullname). */}}
{{- define "loadtest.appFullname" -}}
{{- $release := .Values.target.release }}
{{- if .Values.target.fullname }}
{{- .Values.target.fullname | trunc 63 | trimSuffix "-" }}
{{- else if contains .Values.target.chartName $release }}
{{- $release | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" $release .Values.target.chartName | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The app's Services, named as the app chart names them (sum.fullname, ledger.fullname). */}}
{{- define "loadtest.sumService" -}}
{{- printf "%s-sum" (include "loadtest.appFullname" . | trunc 50 | trimSuffix "-") }}
{{- end }}

{{- define "loadtest.ledgerService" -}}
{{- printf "%s-ledger" (include "loadtest.appFullname" . | trunc 45 | trimSuffix "-") }}
{{- end }}

{{/* The Secret of the client certificate the app chart issues to target.tls.client (distributed-sum.tls.clientSecret). */}}
{{- define "loadtest.clientSecret" -}}
{{- printf "%s-client-%s" (include "loadtest.appFullname" . | trunc 50 | trimSuffix "-") .Values.target.tls.client }}
{{- end }}

{{/* Usage: include "loadtest.appPodLabels" (dict "ctx" $ "component" "sum") */}}
{{- define "loadtest.appPodLabels" -}}
app.kubernetes.io/name: {{ .ctx.Values.target.chartName }}
app.kubernetes.io/instance: {{ .ctx.Values.target.release }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "loadtest.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "loadtest.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "loadtest.selectorLabels" . }}
app.kubernetes.io/component: loadtest
app.kubernetes.io/part-of: distributed-sum
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
