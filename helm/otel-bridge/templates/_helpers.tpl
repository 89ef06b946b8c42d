{{/*
Names and labels.
*/}}
{{- define "otel-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "otel-bridge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "otel-bridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "otel-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otel-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "otel-bridge.labels" -}}
helm.sh/chart: {{ include "otel-bridge.chart" . }}
{{ include "otel-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: otel-bridge
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "otel-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "otel-bridge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "otel-bridge.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
NAME=VALUE,NAME=VALUE from a map, in key order (the format of OTEL_EXPORTER_OTLP_HEADERS
and of the bridge's upstream_headers / list settings).
*/}}
{{- define "otel-bridge.pairs" -}}
{{- $pairs := list -}}
{{- range $name, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%v" $name $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
One setting as the string its environment variable carries; "" for null.
*/}}
{{- define "otel-bridge.settingValue" -}}
{{- if kindIs "invalid" . -}}
{{- else if kindIs "map" . -}}
{{- include "otel-bridge.pairs" . -}}
{{- else if kindIs "slice" . -}}
{{- join "," . -}}
{{- else if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- printf "%.0f" . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/*
The control listener's address (/v1/*, /ws/*): config.control_host, or when null 0.0.0.0
in standalone mode (the Service reaches it) and 127.0.0.1 in sidecar mode (the pod's own
containers only).
*/}}
{{- define "otel-bridge.controlHost" -}}
{{- if kindIs "invalid" .Values.config.control_host -}}
{{- ternary "0.0.0.0" "127.0.0.1" (eq .Values.mode "standalone") -}}
{{- else -}}
{{- .Values.config.control_host -}}
{{- end -}}
{{- end -}}

{{/*
"true" when the control listener is reachable beyond the pod (not on loopback), else "".
*/}}
{{- define "otel-bridge.controlExposed" -}}
{{- $host := include "otel-bridge.controlHost" . -}}
{{- if not (or (eq $host "localhost") (eq $host "::1") (hasPrefix "127." $host)) -}}
true
{{- end -}}
{{- end -}}

{{/*
Refuse to render a control listener beyond the pod without a token (the bridge would
refuse to start, and anyone reaching the port could follow runs through it).
*/}}
{{- define "otel-bridge.requireControlToken" -}}
{{- if and (include "otel-bridge.controlExposed" .) (not .Values.secrets.controlToken.existingSecret) -}}
{{- fail (printf "the control API and pass-through socket (control_host %s, mode %s) are reachable beyond the pod, so they need a token: create a Secret, e.g. kubectl create secret generic otel-bridge-control --from-literal=token=\"$(openssl rand -hex 32)\", and set secrets.controlToken.existingSecret=otel-bridge-control (or use mode sidecar, whose control listener stays on 127.0.0.1)" (include "otel-bridge.controlHost" .) .Values.mode) -}}
{{- end -}}
{{- end -}}

{{/*
Where otlp.tls.existingSecret is mounted, and the file name each of its keys gets there.
*/}}
{{- define "otel-bridge.otlpTlsDir" -}}
/etc/otel-bridge/otlp-tls
{{- end -}}

{{/*
The (key, path) items of the OTLP TLS Secret volume, as YAML: those whose key is set.
Refuses settings the exporter would ignore or reject: TLS files with a plain-text
endpoint, a client certificate without its key, a Secret with no key used.
*/}}
{{- define "otel-bridge.otlpTlsItems" -}}
{{- $tls := .Values.otlp.tls -}}
{{- if $tls.existingSecret -}}
{{- if or .Values.otlp.insecure (not (hasPrefix "https://" .Values.otlp.endpoint)) -}}
{{- fail (printf "otlp.tls.existingSecret (%s) needs TLS to the collector: an https:// otlp.endpoint and otlp.insecure false" $tls.existingSecret) -}}
{{- end -}}
{{- if ne (empty $tls.certKey) (empty $tls.keyKey) -}}
{{- fail "otlp.tls: set both certKey and keyKey (a client certificate and its key), or neither" -}}
{{- end -}}
{{- if and (empty $tls.caKey) (empty $tls.certKey) -}}
{{- fail "otlp.tls.existingSecret is set but caKey, certKey and keyKey are all empty" -}}
{{- end -}}
{{- with $tls.caKey }}
- key: {{ . | quote }}
  path: ca.crt
{{- end }}
{{- with $tls.certKey }}
- key: {{ . | quote }}
  path: tls.crt
{{- end }}
{{- with $tls.keyKey }}
- key: {{ . | quote }}
  path: tls.key
{{- end }}
{{- end -}}
{{- end -}}

{{/*
The bridge container's environment: Downward API, resource, OTLP, settings, secrets.
A variable referenced as $(NAME) is defined before its use, as Kubernetes requires.
*/}}
{{- define "otel-bridge.env" -}}
{{- include "otel-bridge.requireControlToken" . -}}
{{- $v := .Values -}}
{{- if $v.resource.kubernetesAttributes }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: K8S_POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ $v.resource.serviceName | quote }}
{{- $attributes := list -}}
{{- if $v.resource.kubernetesAttributes -}}
{{- $attributes = list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" "k8s.pod.uid=$(K8S_POD_UID)" -}}
{{- end -}}
{{- with $v.resource.attributes -}}
{{- $attributes = append $attributes (include "otel-bridge.pairs" .) -}}
{{- end -}}
{{- if $attributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- end }}
{{- with $v.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $v.otlp.protocol | quote }}
{{- if $v.otlp.insecure }}
- name: OTEL_EXPORTER_OTLP_INSECURE
  value: "true"
{{- end }}
{{- with $v.otlp.compression }}
- name: OTEL_EXPORTER_OTLP_COMPRESSION
  value: {{ . | quote }}
{{- end }}
{{- if include "otel-bridge.otlpTlsItems" . }}
{{- $dir := include "otel-bridge.otlpTlsDir" . }}
{{- if $v.otlp.tls.caKey }}
- name: OTEL_EXPORTER_OTLP_CERTIFICATE
  value: {{ printf "%s/ca.crt" $dir | quote }}
{{- end }}
{{- if $v.otlp.tls.certKey }}
- name: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
  value: {{ printf "%s/tls.crt" $dir | quote }}
- name: OTEL_EXPORTER_OTLP_CLIENT_KEY
  value: {{ printf "%s/tls.key" $dir | quote }}
{{- end }}
{{- end }}
{{- $otlpHeaders := list -}}
{{- with $v.otlp.headers -}}
{{- $otlpHeaders = append $otlpHeaders (include "otel-bridge.pairs" .) -}}
{{- end -}}
{{- with $v.secrets.otlpHeaders.existingSecret }}
- name: OTEL_BRIDGE_SECRET_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $v.secrets.otlpHeaders.key | quote }}
{{- $otlpHeaders = append $otlpHeaders "$(OTEL_BRIDGE_SECRET_OTLP_HEADERS)" -}}
{{- end }}
{{- if $otlpHeaders }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  value: {{ join "," $otlpHeaders | quote }}
{{- end }}
{{- $upstreamHeaders := list -}}
{{- with $v.config.upstream_headers -}}
{{- $upstreamHeaders = append $upstreamHeaders (include "otel-bridge.pairs" .) -}}
{{- end -}}
{{- with $v.secrets.upstreamHeaders.existingSecret }}
- name: OTEL_BRIDGE_SECRET_UPSTREAM_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $v.secrets.upstreamHeaders.key | quote }}
{{- $upstreamHeaders = append $upstreamHeaders "$(OTEL_BRIDGE_SECRET_UPSTREAM_HEADERS)" -}}
{{- end }}
{{- if $upstreamHeaders }}
- name: OTEL_BRIDGE_UPSTREAM_HEADERS
  value: {{ join "," $upstreamHeaders | quote }}
{{- end }}
- name: OTEL_BRIDGE_CONTROL_HOST
  value: {{ include "otel-bridge.controlHost" . | quote }}
{{- range $key, $value := $v.config }}
{{- if and (ne $key "upstream_headers") (ne $key "control_host") (not (kindIs "invalid" $value)) }}
{{- $text := include "otel-bridge.settingValue" $value }}
{{- if or $text (not (or (kindIs "slice" $value) (kindIs "map" $value))) }}
- name: {{ printf "OTEL_BRIDGE_%s" (upper $key) }}
  value: {{ $text | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.secrets.upstreamApiKey.existingSecret }}
- name: OTEL_BRIDGE_UPSTREAM_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $v.secrets.upstreamApiKey.key | quote }}
{{- end }}
{{- with $v.secrets.controlToken.existingSecret }}
- name: OTEL_BRIDGE_CONTROL_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $v.secrets.controlToken.key | quote }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The bridge container, as one item of a pod's `containers` list. Used by the standalone
Deployment and, through "otel-bridge.sidecar.container", by other charts' pods.
*/}}
{{- define "otel-bridge.container" -}}
- name: otel-bridge
  image: {{ include "otel-bridge.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - serve
  ports:
    - name: bridge-metrics
      containerPort: {{ .Values.config.port }}
      protocol: TCP
    {{- if include "otel-bridge.controlExposed" . }}
    - name: bridge-control
      containerPort: {{ .Values.config.control_port }}
      protocol: TCP
    {{- end }}
  env:
    {{- include "otel-bridge.env" . | trim | nindent 4 }}
  {{- with .Values.extraEnvFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: otel-bridge-tmp
      mountPath: /tmp
    - name: otel-bridge-state
      mountPath: /var/lib/otel-bridge
    {{- if include "otel-bridge.otlpTlsItems" . }}
    - name: otel-bridge-otlp-tls
      mountPath: {{ include "otel-bridge.otlpTlsDir" . }}
      readOnly: true
    {{- end }}
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/*
The bridge's volumes, as items of a pod's `volumes` list.
*/}}
{{- define "otel-bridge.volumes" -}}
- name: otel-bridge-tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: otel-bridge-state
  emptyDir:
    sizeLimit: {{ .Values.stateSizeLimit }}
{{- with include "otel-bridge.otlpTlsItems" . }}
{{- /* 0444: in another chart's pod no fsGroup may give the files to the bridge's group */}}
- name: otel-bridge-otlp-tls
  secret:
    secretName: {{ $.Values.otlp.tls.existingSecret | quote }}
    defaultMode: 0444
    items:
      {{- . | trim | nindent 6 }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Sidecar mode, for other charts. Add this chart as a dependency (mode: sidecar) and, in the
pod template, pass the subchart's own scope:

    containers:
      - name: app
        ...
      {{- include "otel-bridge.sidecar.container" (index .Subcharts "otel-bridge") | nindent 6 }}
    volumes:
      {{- include "otel-bridge.sidecar.volumes" (index .Subcharts "otel-bridge") | nindent 6 }}

The app then registers runs at http://127.0.0.1:<config.control_port>/v1/runs (the control
listener stays on the pod's loopback); Prometheus scrapes the container port bridge-metrics.
*/}}
{{- define "otel-bridge.sidecar.container" -}}
{{ include "otel-bridge.container" . }}
{{- end -}}

{{- define "otel-bridge.sidecar.volumes" -}}
{{ include "otel-bridge.volumes" . }}
{{- end -}}
