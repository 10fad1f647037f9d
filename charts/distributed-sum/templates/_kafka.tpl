{{/*
How the services reach Kafka and prove who they are (docs/security.md, Kafka): the listener they dial,
the Secrets they mount and the KAFKA_* settings that point at them. With Strimzi the Secrets are the
operator's (the cluster CA, one per KafkaUser); with an external Kafka they are named in values.
*/}}

{{/* The client's security.protocol for kafka.authentication. */}}
{{- define "distributed-sum.kafka.protocol" -}}
{{- get (dict "tls" "SSL" "scram-sha-512" "SASL_SSL" "none" "PLAINTEXT") .Values.kafka.authentication }}
{{- end }}

{{/* The Strimzi listener's port: TLS on 9093, plaintext (kafka.authentication none) on 9092. */}}
{{- define "distributed-sum.kafka.strimziPort" -}}
{{- ternary 9092 9093 (eq .Values.kafka.authentication "none") }}
{{- end }}

{{/* The KafkaUser of a service, whose name is its Kafka user and its Secret's. Usage: dict "ctx" $ "component" "sum" */}}
{{- define "distributed-sum.kafka.userName" -}}
{{- include "distributed-sum.componentName" (dict "ctx" .ctx "component" (printf "%s-kafka" .component)) }}
{{- end }}

{{/* Secret and key of the CA that signed the brokers' certificates; empty: the image's trust store. */}}
{{- define "distributed-sum.kafka.caSecret" -}}
{{- if .Values.kafka.strimzi.enabled }}
{{- dict "name" (printf "%s-cluster-ca-cert" (include "distributed-sum.kafka.clusterName" .)) "key" "ca.crt" | toJson }}
{{- else }}
{{- .Values.kafka.external.caSecret | toJson }}
{{- end }}
{{- end }}

{{/* Secret of a service's Kafka credentials. Usage: dict "ctx" $ "component" "sum" */}}
{{- define "distributed-sum.kafka.userSecret" -}}
{{- if .ctx.Values.kafka.strimzi.enabled }}
{{- include "distributed-sum.kafka.userName" . }}
{{- else }}
{{- (get .ctx.Values.kafka.external .component).secretName }}
{{- end }}
{{- end }}

{{/* KAFKA_* security settings of a service. Usage: dict "ctx" $ "component" "sum" */}}
{{- define "distributed-sum.kafka.securityEnv" -}}
{{- $auth := .ctx.Values.kafka.authentication }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ include "distributed-sum.kafka.protocol" .ctx | quote }}
{{- if ne $auth "none" }}
{{- if (include "distributed-sum.kafka.caSecret" .ctx | fromJson).name }}
- name: KAFKA_CA_FILE
  value: /etc/distsum/kafka/ca/ca.crt
{{- end }}
{{- if eq $auth "tls" }}
- name: KAFKA_CERT_FILE
  value: /etc/distsum/kafka/user/user.crt
- name: KAFKA_KEY_FILE
  value: /etc/distsum/kafka/user/user.key
{{- else }}
- name: KAFKA_SASL_MECHANISM
  value: SCRAM-SHA-512
- name: KAFKA_SASL_USERNAME
  value: {{ ternary (include "distributed-sum.kafka.userName" .) (get .ctx.Values.kafka.external .component).username .ctx.Values.kafka.strimzi.enabled | quote }}
- name: KAFKA_SASL_PASSWORD_FILE
  value: /etc/distsum/kafka/user/password
{{- end }}
{{- end }}
{{- end }}

{{/*
The credential volumes: the CA, and the service's certificate and key (tls) or password (SCRAM), read
only by the service's user. Usage: dict "ctx" $ "component" "sum"
*/}}
{{- define "distributed-sum.kafka.volumes" -}}
{{- if ne .ctx.Values.kafka.authentication "none" }}
{{- $ca := include "distributed-sum.kafka.caSecret" .ctx | fromJson }}
{{- if $ca.name }}
- name: kafka-ca
  secret:
    secretName: {{ $ca.name }}
    defaultMode: 0440
    items:
      - key: {{ $ca.key }}
        path: ca.crt
{{- end }}
- name: kafka-user
  secret:
    secretName: {{ include "distributed-sum.kafka.userSecret" . }}
    defaultMode: 0440
    items:
      {{- if eq .ctx.Values.kafka.authentication "tls" }}
      - key: user.crt
        path: user.crt
      - key: user.key
        path: user.key
      {{- else }}
      - key: password
        path: password
      {{- end }}
{{- end }}
{{- end }}

{{- define "distributed-sum.kafka.volumeMounts" -}}
{{- if ne .Values.kafka.authentication "none" }}
{{- if (include "distributed-sum.kafka.caSecret" . | fromJson).name }}
- name: kafka-ca
  mountPath: /etc/distsum/kafka/ca
  readOnly: true
{{- end }}
- name: kafka-user
  mountPath: /etc/distsum/kafka/user
  readOnly: true
{{- end }}
{{- end }}

{{/* What values.schema.json cannot check; rendered (as nothing) through distributed-sum.validate. */}}
{{- define "distributed-sum.kafka.validate" -}}
{{- $k := .Values.kafka }}
{{- if and (eq $k.authentication "none") (not $k.allowPlaintext) }}
{{- fail "kafka.authentication=none sends every event in plaintext to a Kafka that anyone who reaches it can write to: keep tls or scram-sha-512, or set kafka.allowPlaintext=true for a migration" }}
{{- end }}
{{- if and (not $k.strimzi.enabled) (ne $k.authentication "none") }}
{{- range $component := list "sum" "ledger" }}
{{- $creds := get $k.external $component }}
{{- if not $creds.secretName }}
{{- fail (printf "kafka.external.%s.secretName is required with kafka.authentication=%s: the Secret holding the %s service's %s" $component $k.authentication $component (ternary "certificate and key (user.crt, user.key)" "password (key password)" (eq $k.authentication "tls"))) }}
{{- end }}
{{- if and (eq $k.authentication "scram-sha-512") (not $creds.username) }}
{{- fail (printf "kafka.external.%s.username is required with kafka.authentication=scram-sha-512" $component) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
