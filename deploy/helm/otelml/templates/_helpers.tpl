{{- define "otelml.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart's. */}}
{{- define "otelml.fullname" -}}
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

{{- define "otelml.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otelml.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "otelml.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "otelml.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "otelml.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "otelml.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "otelml.authSecretName" -}}
{{- default (printf "%s-auth" (include "otelml.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "otelml.authEnabled" -}}
{{- if or .Values.auth.existingSecret .Values.auth.bearerToken }}true{{ end }}
{{- end }}

{{- define "otelml.referencesConfigMap" -}}
{{- default (printf "%s-references" (include "otelml.fullname" .)) .Values.references.existingConfigMap }}
{{- end }}

{{- define "otelml.hasReferences" -}}
{{- if or .Values.references.existingConfigMap .Values.references.files }}true{{ end }}
{{- end }}

{{/* The gateway config file: fixed paths inside the image, everything else from values. */}}
{{- define "otelml.gatewayConfig" -}}
{{- $tls := dict }}
{{- if .Values.tls.enabled }}
{{- $tls = dict "cert_file" "/etc/otelml/tls/tls.crt" "key_file" "/etc/otelml/tls/tls.key" }}
{{- if .Values.tls.clientCA }}
{{- $_ := set $tls "client_ca_file" "/etc/otelml/tls/ca.crt" }}
{{- end }}
{{- end }}
{{- $grpc := dict "endpoint" (printf "0.0.0.0:%d" (int .Values.service.ports.grpc)) }}
{{- with .Values.grpc.maxConnectionAge }}{{ $_ := set $grpc "max_connection_age" . }}{{ end }}
{{- with .Values.grpc.maxConnectionAgeGrace }}{{ $_ := set $grpc "max_connection_age_grace" . }}{{ end }}
{{- $http := dict "endpoint" (printf "0.0.0.0:%d" (int .Values.service.ports.http)) }}
{{- if $tls }}
{{- $_ := set $grpc "tls" $tls }}
{{- $_ := set $http "tls" $tls }}
{{- end }}
{{- $models := list }}
{{- range .Values.models }}
{{- $model := deepCopy . }}
{{- if .reference }}
{{- $_ := set $model "reference" (printf "/etc/otelml/references/%s" .reference) }}
{{- end }}
{{- $models = append $models $model }}
{{- end }}
{{- $config := dict
  "workers" (int .Values.workers)
  "receivers" (dict "otlp" (dict "grpc" $grpc "http" $http))
  "admin" (dict "endpoint" (printf "0.0.0.0:%d" (int .Values.service.ports.admin)))
  "models" $models
  "queue" (dict "directory" "/var/lib/otelml/queue" "max_bytes" .Values.queue.max_bytes "fsync" .Values.queue.fsync)
  "limits" .Values.limits
  "redaction" .Values.redaction
}}
{{- with .Values.exporters }}
{{- $_ := set $config "exporters" (fromYaml (tpl (toYaml .) $)) }}
{{- end }}
{{- if include "otelml.authEnabled" . }}
{{- $_ := set $config "auth" (dict "bearer_token" "${OTELML_BEARER_TOKEN}") }}
{{- end }}
{{- toYaml (mergeOverwrite $config .Values.extraConfig) }}
{{- end }}

{{/* The pod template shared by the Deployment and the StatefulSet. */}}
{{- define "otelml.podTemplate" -}}
metadata:
  labels:
    {{- include "otelml.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: gateway
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "otelml.gatewayConfig" . | sha256sum }}
    {{- if .Values.prometheusScrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .Values.service.ports.admin | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "otelml.serviceAccountName" . }}
  automountServiceAccountToken: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  containers:
    - name: gateway
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["-c", "/etc/otelml/gateway.yaml"]
      ports:
        - {name: otlp-grpc, containerPort: {{ .Values.service.ports.grpc }}, protocol: TCP}
        - {name: otlp-http, containerPort: {{ .Values.service.ports.http }}, protocol: TCP}
        - {name: admin, containerPort: {{ .Values.service.ports.admin }}, protocol: TCP}
      env:
        {{- if include "otelml.authEnabled" . }}
        - name: OTELML_BEARER_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ include "otelml.authSecretName" . }}
              key: {{ .Values.auth.secretKey }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.startupProbe }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if .Values.preStopSleepSeconds }}
      lifecycle:
        preStop:
          exec:
            command: ["sleep", "{{ .Values.preStopSleepSeconds }}"]
      {{- end }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - {name: config, mountPath: /etc/otelml/gateway.yaml, subPath: gateway.yaml, readOnly: true}
        - {name: queue, mountPath: /var/lib/otelml/queue}
        - {name: tmp, mountPath: /tmp}
        {{- if include "otelml.hasReferences" . }}
        - {name: references, mountPath: /etc/otelml/references, readOnly: true}
        {{- end }}
        {{- if .Values.tls.enabled }}
        - {name: tls, mountPath: /etc/otelml/tls, readOnly: true}
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "otelml.fullname" . }}
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
    {{- if not .Values.persistence.enabled }}
    - name: queue
      emptyDir: {}
    {{- end }}
    {{- if include "otelml.hasReferences" . }}
    - name: references
      configMap:
        name: {{ include "otelml.referencesConfigMap" . }}
    {{- end }}
    {{- if .Values.tls.enabled }}
    - name: tls
      secret:
        secretName: {{ required "tls.existingSecret is required when tls.enabled" .Values.tls.existingSecret }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or .Values.topologySpreadConstraints .Values.spreadAcrossNodes }}
  topologySpreadConstraints:
    {{- with .Values.topologySpreadConstraints }}
    {{- toYaml . | nindent 4 }}
    {{- else }}
    {{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
    - maxSkew: 1
      topologyKey: {{ . }}
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "otelml.selectorLabels" $ | nindent 10 }}
    {{- end }}
    {{- end }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
