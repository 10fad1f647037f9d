{{/*
Mutual TLS on the APIs (docs/security.md): where the certificates come from, who may call, and the
pieces the workloads, helm tests and NetworkPolicies share.
*/}}

{{/* certManager, existingSecrets or generated (the chart's own CA); empty with TLS off. */}}
{{- define "distributed-sum.tls.source" -}}
{{- if .Values.tls.enabled }}
{{- if .Values.tls.certManager.issuerRef.name }}certManager
{{- else if or .Values.tls.existingSecrets.sum .Values.tls.existingSecrets.ledger }}existingSecrets
{{- else }}generated
{{- end }}
{{- end }}
{{- end }}

{{/* Secret with a server's tls.crt, tls.key and ca.crt. Usage: dict "ctx" $ "component" "sum" */}}
{{- define "distributed-sum.tls.serverSecret" -}}
{{- if eq (include "distributed-sum.tls.source" .ctx) "existingSecrets" }}
{{- get .ctx.Values.tls.existingSecrets .component }}
{{- else }}
{{- include "distributed-sum.componentName" (dict "ctx" .ctx "component" (printf "%s-tls" .component)) }}
{{- end }}
{{- end }}

{{/* Secret of the client certificate issued to a tls.clients entry. Usage: dict "ctx" $ "name" "operator" */}}
{{- define "distributed-sum.tls.clientSecret" -}}
{{- include "distributed-sum.componentName" (dict "ctx" .ctx "component" (printf "client-%s" .name)) }}
{{- end }}

{{/* The client certificate the helm tests present. */}}
{{- define "distributed-sum.tls.testClientSecret" -}}
{{- if eq (include "distributed-sum.tls.source" .) "existingSecrets" }}
{{- .Values.tls.existingSecrets.testClient }}
{{- else }}
{{- include "distributed-sum.tls.clientSecret" (dict "ctx" . "name" .Values.tls.testClient) }}
{{- end }}
{{- end }}

{{/*
Names a component's server certificate carries (JSON list): each of its Services (the sum service's
headless one too, where enabled) in every form a client in the cluster may dial, and localhost, which
`kubectl port-forward` clients dial. Usage: dict "ctx" $ "component" "sum"|"ledger"
*/}}
{{- define "distributed-sum.tls.serverNames" -}}
{{- $ns := .ctx.Release.Namespace }}
{{- $service := include (printf "distributed-sum.%s.fullname" .component) .ctx }}
{{- $services := list $service }}
{{- if and (eq .component "sum") .ctx.Values.sum.service.headless }}
{{- $services = append $services (printf "%s-headless" $service) }}
{{- end }}
{{- $names := list }}
{{- range $services }}
{{- $names = concat $names (list . (printf "%s.%s" . $ns) (printf "%s.%s.svc" . $ns) (printf "%s.%s.svc.%s" . $ns $.ctx.Values.tls.clusterDomain)) }}
{{- end }}
{{- append $names "localhost" | toJson }}
{{- end }}

{{/* Identities allowed to `add` (the sum service) or `read` (the ledger), comma-separated. */}}
{{- define "distributed-sum.tls.allowedClients" -}}
{{- $names := list }}
{{- range .ctx.Values.tls.clients }}
{{- if get . $.right }}
{{- $names = append $names .name }}
{{- end }}
{{- end }}
{{- $extra := get .ctx.Values.tls.extraAllowedClients (ternary "sum" "ledger" (eq .right "add")) }}
{{- concat $names $extra | uniq | join "," }}
{{- end }}

{{/* Pods labelled as a client with `right` (add or read): the NetworkPolicy peers that follow the identities. */}}
{{- define "distributed-sum.tls.clientPeers" -}}
{{- range .ctx.Values.tls.clients }}
{{- if get . $.right }}
- podSelector:
    matchLabels:
      distributed-sum/client: {{ .name }}
{{- end }}
{{- end }}
{{- end }}

{{/* TLS_* environment of a service. Usage: dict "ctx" $ "right" "add" */}}
{{- define "distributed-sum.tls.env" -}}
- name: TLS_ENABLED
  value: {{ .ctx.Values.tls.enabled | quote }}
{{- if .ctx.Values.tls.enabled }}
- name: TLS_CLIENT_AUTH
  value: {{ .ctx.Values.tls.clientAuth | quote }}
{{- if .ctx.Values.tls.clientAuth }}
- name: TLS_ALLOWED_CLIENTS
  value: {{ include "distributed-sum.tls.allowedClients" . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The certificate volume. A Secret volume (no subPath) is updated in place when the Secret changes, which
the services notice and load without a restart. Usage: dict "ctx" $ "secret" <name>
*/}}
{{- define "distributed-sum.tls.volume" -}}
- name: tls
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      - key: ca.crt
        path: ca.crt
{{- end }}

{{- define "distributed-sum.tls.volumeMount" -}}
- name: tls
  mountPath: /etc/distsum/tls
  readOnly: true
{{- end }}

{{/* What values.schema.json cannot check; rendered (as nothing) through distributed-sum.validate. */}}
{{- define "distributed-sum.tls.validate" -}}
{{- $tls := .Values.tls }}
{{- $source := include "distributed-sum.tls.source" . }}
{{- if and (not $tls.meshProvidesMtls) (not (and $tls.enabled $tls.clientAuth)) }}
{{- fail "tls.enabled=false or tls.clientAuth=false leaves the APIs open to every pod that reaches them: keep mutual TLS, or set tls.meshProvidesMtls=true if a service mesh encrypts and authenticates every call instead" }}
{{- end }}
{{- if not $tls.enabled }}
{{- range $component := list "sum" "ledger" }}
{{- if ne (get (get $.Values $component) "service").type "ClusterIP" }}
{{- fail (printf "%s.service.type=%s publishes the %s API outside the cluster in plaintext: turn tls.enabled on (a mesh does not protect traffic from outside it), or keep the Service ClusterIP and publish it through the mesh's gateway" $component (get (get $.Values $component) "service").type $component) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $tls.certManager.issuerRef.name (or $tls.existingSecrets.sum $tls.existingSecrets.ledger) }}
{{- fail "tls.certManager.issuerRef.name and tls.existingSecrets are both set: choose one source of certificates" }}
{{- end }}
{{- if eq $source "existingSecrets" }}
{{- range $key := list "sum" "ledger" "testClient" }}
{{- if not (get $tls.existingSecrets $key) }}
{{- fail (printf "tls.existingSecrets.%s is empty: with existing Secrets name all three (sum, ledger, and testClient: a client certificate with an identity allowed to add and read, which the helm tests present)" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $tls.enabled (ne $source "existingSecrets") }}
{{- $test := list }}
{{- range $tls.clients }}
{{- if and (eq .name $tls.testClient) .add .read }}
{{- $test = append $test .name }}
{{- end }}
{{- end }}
{{- if not $test }}
{{- fail (printf "tls.testClient=%s must be one of tls.clients with add and read: the helm tests present its certificate" $tls.testClient) }}
{{- end }}
{{- end }}
{{- end }}
