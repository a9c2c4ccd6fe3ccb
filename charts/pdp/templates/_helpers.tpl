{{/*
Named templates of the pdp chart.

Every template takes the chart's root context: "." inside this chart, or
".Subcharts.pdp" from a parent chart that depends on pdp (see
"pdp.sidecarContainer" below).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "pdp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resource name prefix: fullnameOverride, or release-name, or release-chart. */}}
{{- define "pdp.fullname" -}}
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

{{/* Labels of every resource. */}}
{{- define "pdp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pdp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels the Service, the PodDisruptionBudget and the spread constraints select pods by. */}}
{{- define "pdp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pdp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "pdp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pdp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository:tag (tag defaults to appVersion), or repository@digest. */}}
{{- define "pdp.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the Redis URL, and its key. */}}
{{- define "pdp.redisSecretName" -}}
{{- default (printf "%s-redis" (include "pdp.fullname" .)) .Values.redis.existingSecret }}
{{- end }}
{{- define "pdp.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}url{{ end }}
{{- end }}

{{/* The ConfigMap of the configuration file and the Secret of the state file. */}}
{{- define "pdp.configName" -}}
{{- printf "%s-config" (include "pdp.fullname" .) }}
{{- end }}
{{- define "pdp.stateName" -}}
{{- printf "%s-state" (include "pdp.fullname" .) }}
{{- end }}

{{/*
Fails the rendering with a clear message when the values cannot make a working
pdp. Included by the ConfigMap, which every mode renders.
*/}}
{{- define "pdp.validate" -}}
{{- if eq .Values.source "redis" }}
{{- if not (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail "source is redis: set redis.url or redis.existingSecret" }}
{{- end }}
{{- if and (regexMatch "^rediss?\\+cluster://" .Values.redis.url) .Values.prefix (not (regexMatch "\\{[^}]+\\}" .Values.prefix)) }}
{{- fail (printf "prefix %q: with a Redis Cluster URL the prefix must hold a hash tag, such as \"{pdp}:\"" .Values.prefix) }}
{{- end }}
{{- else if not .Values.state.content }}
{{- fail "source is file: set state.content to the YAML state file" }}
{{- end }}
{{- if and (eq .Values.mode "service") (lt (int .Values.terminationGracePeriodSeconds) (add (int .Values.shutdownDelaySeconds) 10)) }}
{{- fail (printf "terminationGracePeriodSeconds %v: must cover shutdownDelaySeconds (%v) plus pdp's 10 s shutdown timeout" .Values.terminationGracePeriodSeconds .Values.shutdownDelaySeconds) }}
{{- end }}
{{- if and .Values.metrics.podMonitor.enabled (not .Values.metrics.podMonitor.selector) }}
{{- fail "metrics.podMonitor.enabled: set metrics.podMonitor.selector to the labels of the pods holding the sidecar" }}
{{- end }}
{{- if hasKey .Values.configFiles "config.yaml" }}
{{- fail "configFiles: config.yaml is pdp's config file itself (set config); give the file another name" }}
{{- end }}
{{- end }}

{{/*
Pod annotations that roll the pods when the configuration or the state file
changes; a parent chart adds them to the annotations of the pod it includes
"pdp.sidecarContainer" in.
*/}}
{{- define "pdp.checksums" -}}
checksum/config: {{ toYaml (list .Values.config .Values.configFiles) | sha256sum }}
{{- if eq .Values.source "file" }}
checksum/state: {{ .Values.state.content | sha256sum }}
{{- end }}
{{- end }}

{{/*
The pdp container without its name line. Takes (dict "root" <chart context>
"decisionHost" <host of --addr, "" for every interface>).
*/}}
{{- define "pdp.containerBody" -}}
{{- $v := .root.Values -}}
image: {{ include "pdp.image" .root }}
imagePullPolicy: {{ $v.image.pullPolicy }}
args:
  - {{ printf "--addr=%s:%v" .decisionHost $v.ports.decision | quote }}
  - {{ printf "--admin-addr=:%v" $v.ports.admin | quote }}
  {{- if $v.ports.grpc }}
  - {{ printf "--grpc-addr=%s:%v" .decisionHost $v.ports.grpc | quote }}
  {{- end }}
  - --config=/etc/pdp/config/config.yaml
  {{- with $v.evalTimeout }}
  - {{ printf "--eval-timeout=%s" . | quote }}
  {{- end }}
  {{- if not (kindIs "invalid" $v.decisionCache.maxBytes) }}
  - {{ printf "--decision-cache-max-bytes=%d" (int64 $v.decisionCache.maxBytes) | quote }}
  {{- end }}
  {{- if $v.tls.secretName }}
  - --tls-cert-file=/etc/pdp/tls/tls.crt
  - --tls-key-file=/etc/pdp/tls/tls.key
  {{- if $v.tls.clientCA.enabled }}
  - {{ printf "--tls-client-ca-file=/etc/pdp/tls-client-ca/%s" $v.tls.clientCA.key | quote }}
  {{- end }}
  {{- end }}
  {{- if and (eq $v.source "redis") $v.prefix }}
  - {{ printf "--prefix=%s" $v.prefix | quote }}
  {{- end }}
  {{- if eq $v.source "file" }}
  - --state=/etc/pdp/state/state.yaml
  {{- end }}
  {{- /* A native sidecar stops after the pod's other containers: nothing left to drain for. */}}
  {{- if and $v.shutdownDelaySeconds (eq $v.mode "service") }}
  - {{ printf "--shutdown-delay=%ds" (int $v.shutdownDelaySeconds) | quote }}
  {{- end }}
  {{- range $v.extraArgs }}
  - {{ . | quote }}
  {{- end }}
{{- with $v.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
env:
  {{- if eq $v.source "redis" }}
  - name: PDP_REDIS
    valueFrom:
      secretKeyRef:
        name: {{ include "pdp.redisSecretName" .root }}
        key: {{ include "pdp.redisSecretKey" .root }}
  {{- end }}
  {{- if and $v.resources.limits $v.resources.limits.memory }}
  - name: GOMEMLIMIT
    valueFrom:
      resourceFieldRef:
        resource: limits.memory
  {{- end }}
  {{- with $v.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
ports:
  - name: decision
    containerPort: {{ $v.ports.decision }}
    protocol: TCP
  - name: admin
    containerPort: {{ $v.ports.admin }}
    protocol: TCP
  {{- if $v.ports.grpc }}
  - name: grpc
    containerPort: {{ $v.ports.grpc }}
    protocol: TCP
  {{- end }}
startupProbe:
  httpGet:
    path: /health/live
    port: admin
  {{- toYaml $v.probes.startup | nindent 2 }}
livenessProbe:
  httpGet:
    path: /health/live
    port: admin
  {{- toYaml $v.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet:
    path: /health/ready
    port: admin
  {{- toYaml $v.probes.readiness | nindent 2 }}
resources:
  {{- toYaml $v.resources | nindent 2 }}
securityContext:
  {{- toYaml $v.securityContext | nindent 2 }}
volumeMounts:
  - name: pdp-config
    mountPath: /etc/pdp/config
    readOnly: true
  {{- if eq $v.source "file" }}
  - name: pdp-state
    mountPath: /etc/pdp/state
    readOnly: true
  {{- end }}
  {{- if $v.tls.secretName }}
  - name: pdp-tls
    mountPath: /etc/pdp/tls
    readOnly: true
  {{- if $v.tls.clientCA.enabled }}
  - name: pdp-tls-client-ca
    mountPath: /etc/pdp/tls-client-ca
    readOnly: true
  {{- end }}
  {{- end }}
  - name: pdp-tmp
    mountPath: /tmp
  {{- with $v.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The pdp container of the Deployment (service mode), as one list item. */}}
{{- define "pdp.container" -}}
- name: pdp
  {{- include "pdp.containerBody" (dict "root" . "decisionHost" "") | nindent 2 }}
{{- end }}

{{/*
The pdp container as a native sidecar, as one list item for a pod's
initContainers: an init container with restartPolicy Always (Kubernetes 1.29+)
that starts before, and stops after, the pod's other containers. Its decision
port listens on sidecar.decisionAddr (loopback by default). Include it with the
chart context, from a parent chart that depends on pdp:

  initContainers:
    {{- include "pdp.sidecarContainer" .Subcharts.pdp | nindent 4 }}
  volumes:
    {{- include "pdp.volumes" .Subcharts.pdp | nindent 4 }}
*/}}
{{- define "pdp.sidecarContainer" -}}
- name: pdp
  restartPolicy: Always
  {{- include "pdp.containerBody" (dict "root" . "decisionHost" .Values.sidecar.decisionAddr) | nindent 2 }}
{{- end }}

{{/* The volumes the pdp container mounts, as list items for a pod's volumes (service and sidecar). */}}
{{- define "pdp.volumes" -}}
- name: pdp-config
  configMap:
    name: {{ include "pdp.configName" . }}
{{- if eq .Values.source "file" }}
- name: pdp-state
  secret:
    secretName: {{ include "pdp.stateName" . }}
{{- end }}
{{- if .Values.tls.secretName }}
- name: pdp-tls
  secret:
    secretName: {{ .Values.tls.secretName }}
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
{{- if .Values.tls.clientCA.enabled }}
- name: pdp-tls-client-ca
  secret:
    secretName: {{ .Values.tls.clientCA.secretName | default .Values.tls.secretName }}
    items:
      - {key: {{ .Values.tls.clientCA.key }}, path: {{ .Values.tls.clientCA.key }}}
{{- end }}
{{- end }}
- name: pdp-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
