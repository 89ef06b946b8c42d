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
{{- if kindIs "invalid" $v.config.shutdown_open_runs }}
- name: OTEL_BRIDGE_SHUTDOWN_OPEN_RUNS
  value: {{ ternary "keep" "close" (and (eq $v.mode "standalone") $v.persistence.enabled) | quote }}
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
Where the state volume (otel-bridge-state) is mounted: config.state_dir (the SQLite state)
and config.traces_out go there.
*/}}
{{- define "otel-bridge.stateMount" -}}
/var/lib/otel-bridge
{{- end -}}

{{/*
Seconds the pod's grace period must leave after config.shutdown_timeout_s: the bridge,
once its exporters' drain deadline has passed, still writes what is left to state_dir,
closes the database and exits.
*/}}
{{- define "otel-bridge.shutdownMarginSeconds" -}}
5
{{- end -}}

{{/*
Refuse a grace period that does not cover the bridge's drain deadline plus the margin:
Kubernetes would SIGKILL the bridge while it drains.
*/}}
{{- define "otel-bridge.requireGracePeriod" -}}
{{- $grace := float64 .Values.terminationGracePeriodSeconds -}}
{{- $drain := float64 .Values.config.shutdown_timeout_s -}}
{{- $margin := float64 (include "otel-bridge.shutdownMarginSeconds" .) -}}
{{- if lt (subf $grace $drain) $margin -}}
{{- fail (printf "terminationGracePeriodSeconds (%s) must exceed config.shutdown_timeout_s (%s) by %s seconds at least: on SIGTERM the bridge gives its exporters shutdown_timeout_s to deliver, then writes what is left to state_dir and exits, and Kubernetes kills it when the grace period ends. Set terminationGracePeriodSeconds to %s or more, or lower config.shutdown_timeout_s (in sidecar mode the app pod's grace period must also cover the app's own shutdown, which comes first)" (include "otel-bridge.settingValue" $grace) (include "otel-bridge.settingValue" $drain) (include "otel-bridge.settingValue" $margin) (include "otel-bridge.settingValue" (ceil (addf $drain $margin)))) -}}
{{- end -}}
{{- end -}}

{{/*
Bytes of a Kubernetes quantity (an integer, or a string such as 512Mi or 1.5G); the schema
allows only these forms.
*/}}
{{- define "otel-bridge.quantityBytes" -}}
{{- if kindIs "string" . -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- printf "%.0f" (mulf (float64 $number) (index $units (trimPrefix $number .))) -}}
{{- else -}}
{{- printf "%.0f" (float64 .) -}}
{{- end -}}
{{- end -}}

{{/*
Checks of the durable state: config.state_dir on a writable volume (the root filesystem is
read-only), the state volume larger than the bridge's disk budget (an emptyDir past its
sizeLimit gets the pod evicted, a full PVC fails every write), and a PVC only where one
bridge owns it.
*/}}
{{- define "otel-bridge.requireState" -}}
{{- $v := .Values -}}
{{- $mount := include "otel-bridge.stateMount" . -}}
{{- $dir := $v.config.state_dir -}}
{{- $onStateVolume := false -}}
{{- if not (kindIs "invalid" $dir) -}}
{{- $dir = trimSuffix "/" $dir -}}
{{- $onStateVolume = or (eq $dir $mount) (hasPrefix (printf "%s/" $mount) $dir) -}}
{{- $writable := $onStateVolume -}}
{{- range $v.extraVolumeMounts -}}
{{- $path := trimSuffix "/" (toString .mountPath) -}}
{{- if and (not .readOnly) (or (eq $dir $path) (hasPrefix (printf "%s/" $path) $dir)) -}}
{{- $writable = true -}}
{{- end -}}
{{- end -}}
{{- if not $writable -}}
{{- fail (printf "config.state_dir %q is not on a writable volume (the container's root filesystem is read-only): use a directory under %s, the state volume (the default is %s/state), or mount a volume there with extraVolumes and extraVolumeMounts" $dir $mount $mount) -}}
{{- end -}}
{{- end -}}
{{- if $v.persistence.enabled -}}
{{- if ne $v.mode "standalone" -}}
{{- fail "persistence.enabled is for standalone mode: in sidecar mode each app pod keeps the bridge's state in its own emptyDir (stateSizeLimit), which survives restarts of the bridge container; a PersistentVolumeClaim would be shared by every replica of the app" -}}
{{- end -}}
{{- if gt (int $v.replicaCount) 1 -}}
{{- fail (printf "persistence.enabled with replicaCount %d: a state directory belongs to one bridge (two would resume the same runs and export them twice, and SQLite must not be shared across nodes); use replicaCount 1, or one release per replica" (int $v.replicaCount)) -}}
{{- end -}}
{{- with $v.strategy -}}
{{- if ne (toString .type) "Recreate" -}}
{{- fail "persistence.enabled needs strategy.type Recreate (the chart's default then): with a RollingUpdate the new pod would wait for the old one's ReadWriteOnce volume, or open the same state directory while the old bridge still writes it; leave strategy empty or set type Recreate" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $onStateVolume -}}
{{- $budget := float64 $v.config.state_max_bytes -}}
{{- $name := "stateSizeLimit" -}}
{{- $limit := $v.stateSizeLimit -}}
{{- if $v.persistence.enabled -}}
{{- $name = "persistence.size" -}}
{{- $limit = $v.persistence.size -}}
{{- if $v.persistence.existingClaim -}}
{{- $limit = "" -}}
{{- end -}}
{{- end -}}
{{- if $limit -}}
{{- $bytes := float64 (include "otel-bridge.quantityBytes" $limit) -}}
{{- if lt $bytes (mulf $budget 1.25) -}}
{{- fail (printf "%s (%v) must be at least 1.25 times config.state_max_bytes (%s bytes), the bridge's disk budget, leaving room for SQLite's write-ahead log and config.traces_out: an emptyDir past its sizeLimit gets the pod evicted, a full volume fails every write; raise %s or lower config.state_max_bytes" $name $limit (include "otel-bridge.settingValue" $budget) $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The bridge container as one item of a pod's container list, from a dict:
  ctx:    the chart's scope;
  native: true for a native sidecar, an item of `initContainers` that Kubernetes (>= 1.29)
          restarts like a container (restartPolicy Always), starts, and waits to be ready
          (startupProbe), before the app containers, and stops after them.
*/}}
{{- define "otel-bridge.bridgeContainer" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
{{- include "otel-bridge.requireGracePeriod" $ctx -}}
{{- include "otel-bridge.requireState" $ctx -}}
- name: otel-bridge
  {{- if .native }}
  restartPolicy: Always
  {{- end }}
  image: {{ include "otel-bridge.image" $ctx | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    - serve
  ports:
    - name: bridge-metrics
      containerPort: {{ $v.config.port }}
      protocol: TCP
    {{- if include "otel-bridge.controlExposed" $ctx }}
    - name: bridge-control
      containerPort: {{ $v.config.control_port }}
      protocol: TCP
    {{- end }}
  env:
    {{- include "otel-bridge.env" $ctx | trim | nindent 4 }}
  {{- with $v.extraEnvFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.startupProbe }}
  startupProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: otel-bridge-tmp
      mountPath: /tmp
    - name: otel-bridge-state
      mountPath: {{ include "otel-bridge.stateMount" $ctx }}
    {{- if include "otel-bridge.otlpTlsItems" $ctx }}
    - name: otel-bridge-otlp-tls
      mountPath: {{ include "otel-bridge.otlpTlsDir" $ctx }}
      readOnly: true
    {{- end }}
    {{- with $v.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/*
The bridge container, as one item of a pod's `containers` list (the standalone Deployment's
only container; in sidecar mode "otel-bridge.sidecar.container").
*/}}
{{- define "otel-bridge.container" -}}
{{ include "otel-bridge.bridgeContainer" (dict "ctx" . "native" false) }}
{{- end -}}

{{/*
The claim of the standalone state volume: persistence.existingClaim, or the chart's own.
*/}}
{{- define "otel-bridge.stateClaim" -}}
{{- default (printf "%s-state" (include "otel-bridge.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{/*
The bridge's volumes, as items of a pod's `volumes` list.
*/}}
{{- define "otel-bridge.volumes" -}}
{{- include "otel-bridge.requireState" . -}}
- name: otel-bridge-tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: otel-bridge-state
{{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "otel-bridge.stateClaim" . }}
{{- else if kindIs "invalid" .Values.stateSizeLimit }}
  emptyDir: {}
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.stateSizeLimit }}
{{- end }}
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
pod template, pass the subchart's own scope. With sidecar.native true (the default;
Kubernetes >= 1.29) the bridge is a native sidecar, an item of `initContainers`:

    terminationGracePeriodSeconds: {{ include "otel-bridge.sidecar.terminationGracePeriodSeconds" (index .Subcharts "otel-bridge") }}
    initContainers:
      {{- include "otel-bridge.sidecar.initContainer" (index .Subcharts "otel-bridge") | nindent 6 }}
    containers:
      - name: app
        ...
    volumes:
      {{- include "otel-bridge.sidecar.volumes" (index .Subcharts "otel-bridge") | nindent 6 }}

With sidecar.native false (older clusters) it is a plain item of `containers`:

    containers:
      - name: app
        ...
      {{- include "otel-bridge.sidecar.container" (index .Subcharts "otel-bridge") | nindent 6 }}

Each of the two templates refuses the other setting of sidecar.native, so a chart written
for one form never silently loses the bridge. The app registers runs at
http://127.0.0.1:<config.control_port>/v1/runs (the control listener stays on the pod's
loopback); Prometheus scrapes the container port bridge-metrics.
*/}}
{{- define "otel-bridge.sidecar.initContainer" -}}
{{- if not .Values.sidecar.native -}}
{{- fail "sidecar.native is false, but the pod includes \"otel-bridge.sidecar.initContainer\" (the native sidecar, Kubernetes >= 1.29): include \"otel-bridge.sidecar.container\" in the pod's containers instead, or set sidecar.native true" -}}
{{- end -}}
{{- if semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version -}}
{{- fail (printf "the bridge as a native sidecar (an init container with restartPolicy Always) needs Kubernetes 1.29 or later, and this is %s: set sidecar.native false and include \"otel-bridge.sidecar.container\" in the pod's containers instead of \"otel-bridge.sidecar.initContainer\"" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{ include "otel-bridge.bridgeContainer" (dict "ctx" . "native" true) }}
{{- end -}}

{{- define "otel-bridge.sidecar.container" -}}
{{- if .Values.sidecar.native -}}
{{- fail "the pod includes \"otel-bridge.sidecar.container\", the bridge as a plain container, but sidecar.native is true (the default): the bridge is now a native sidecar, started and ready before the app and stopped after it (Kubernetes >= 1.29). Move the include to the pod's initContainers as \"otel-bridge.sidecar.initContainer\" (see the chart's README), or set sidecar.native false to keep the plain container (clusters older than 1.29)" -}}
{{- end -}}
{{ include "otel-bridge.container" . }}
{{- end -}}

{{- define "otel-bridge.sidecar.volumes" -}}
{{ include "otel-bridge.volumes" . }}
{{- end -}}

{{/*
terminationGracePeriodSeconds for the app's pod, checked against config.shutdown_timeout_s.
Native sidecars are stopped after the app's containers have exited, within the same grace
period: set terminationGracePeriodSeconds to the app's own shutdown time plus
shutdown_timeout_s plus 5 seconds.
*/}}
{{- define "otel-bridge.sidecar.terminationGracePeriodSeconds" -}}
{{- include "otel-bridge.requireGracePeriod" . -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}
