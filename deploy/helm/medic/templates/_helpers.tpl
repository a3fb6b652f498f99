{{/*
Names and labels.
*/}}
{{- define "medic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "medic.fullname" -}}
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

{{- define "medic.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "medic.selectorLabels" -}}
app.kubernetes.io/name: {{ include "medic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "medic.labels" -}}
helm.sh/chart: {{ include "medic.chart" . }}
{{ include "medic.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "medic.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "medic.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "medic.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Paths inside medic's container. The root filesystem is read-only: medic
writes only under dataDir (the data volume: a PersistentVolumeClaim or an
emptyDir) and /tmp (an emptyDir).
*/}}
{{- define "medic.dataDir" -}}/var/lib/medic{{- end }}
{{- define "medic.configDir" -}}/etc/medic/config{{- end }}
{{- define "medic.playbooksDir" -}}/etc/medic/playbooks{{- end }}
{{- define "medic.secretsDir" -}}/var/run/secrets/medic{{- end }}

{{/*
Whether the data volume is a PersistentVolumeClaim.
*/}}
{{- define "medic.persistent" -}}
{{- if and (not .Values.nats.url) .Values.nats.persistence.enabled }}true{{- end }}
{{- end }}

{{/*
Secrets. A secret value is a string (kept in the chart's Secret) or
{secretKeyRef: {name, key}} (an existing Secret). "medic.secrets" lists every
secret the values set, as YAML {entries: [{file, value} | {file, ref: {name, key}}]};
medic reads each from <secretsDir>/<file>.
*/}}
{{- define "medic.secretEntry" -}}
{{- $v := index . 0 }}{{- $file := index . 1 }}{{- $where := index . 2 }}
{{- if kindIs "map" $v }}
{{- $ref := $v.secretKeyRef | default dict }}
{{- if or (not $ref.name) (not $ref.key) }}
{{- fail (printf "%s: a secret is a string or {secretKeyRef: {name: SECRET, key: KEY}}" $where) }}
{{- end }}
- file: {{ $file | quote }}
  ref: {name: {{ $ref.name | quote }}, key: {{ $ref.key | quote }}}
{{- else if $v }}
- file: {{ $file | quote }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end }}

{{/* Sink parameters that hold secrets even when given as plain strings. */}}
{{- define "medic.secretSinkParams" -}}webhook_url secret token api_key bot_token password routing_key{{- end }}

{{- define "medic.isSecretSinkParam" -}}
{{- $k := index . 0 }}{{- $v := index . 1 }}
{{- if or (and (kindIs "map" $v) (hasKey $v "secretKeyRef")) (and (has $k (splitList " " (include "medic.secretSinkParams" dict))) (kindIs "string" $v) $v) }}true{{- end }}
{{- end }}

{{- define "medic.secrets" -}}
entries:
{{- include "medic.secretEntry" (list .Values.webhook.bearerToken "webhook-bearer-token" "webhook.bearerToken") | nindent 0 }}
{{- include "medic.secretEntry" (list .Values.playbooks.webhookSecret "playbooks-webhook-secret" "playbooks.webhookSecret") | nindent 0 }}
{{- include "medic.secretEntry" (list .Values.ai.apiKey "ai-api-key" "ai.apiKey") | nindent 0 }}
{{- include "medic.secretEntry" (list .Values.knowledgeBase.weaviate.apiKey "weaviate-api-key" "knowledgeBase.weaviate.apiKey") | nindent 0 }}
{{- include "medic.secretEntry" (list .Values.nats.credentials "nats.creds" "nats.credentials") | nindent 0 }}
{{- include "medic.secretEntry" (list .Values.slack.botToken "slack-bot-token" "slack.botToken") | nindent 0 }}
{{- include "medic.secretEntry" (list .Values.slack.signingSecret "slack-signing-secret" "slack.signingSecret") | nindent 0 }}
{{- include "medic.secretEntry" (list .Values.slack.appToken "slack-app-token" "slack.appToken") | nindent 0 }}
{{- range $name, $repo := .Values.playbookRepos }}
{{- include "medic.secretEntry" (list $repo.token (printf "repo-%s-token" $name) (printf "playbookRepos.%s.token" $name)) | nindent 0 }}
{{- include "medic.secretEntry" (list $repo.sshKey (printf "repo-%s-ssh-key" $name) (printf "playbookRepos.%s.sshKey" $name)) | nindent 0 }}
{{- include "medic.secretEntry" (list $repo.knownHosts (printf "repo-%s-known-hosts" $name) (printf "playbookRepos.%s.knownHosts" $name)) | nindent 0 }}
{{- end }}
{{- range $name, $src := .Values.webhookSources }}
{{- include "medic.secretEntry" (list $src.bearerToken (printf "webhook-source-%s-bearer-token" $name) (printf "webhookSources.%s.bearerToken" $name)) | nindent 0 }}
{{- include "medic.secretEntry" (list $src.password (printf "webhook-source-%s-password" $name) (printf "webhookSources.%s.password" $name)) | nindent 0 }}
{{- include "medic.secretEntry" (list $src.hmacSecret (printf "webhook-source-%s-hmac-secret" $name) (printf "webhookSources.%s.hmacSecret" $name)) | nindent 0 }}
{{- end }}
{{- range $i, $sink := .Values.sinksConfig }}
{{- range $k, $v := $sink }}
{{- if include "medic.isSecretSinkParam" (list $k $v) }}
{{- include "medic.secretEntry" (list $v (printf "sink-%s-%s" $sink.name $k) (printf "sinksConfig[%d].%s" $i $k)) | nindent 0 }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The path medic reads a secret from, or nothing when the value is unset. */}}
{{- define "medic.secretPath" -}}
{{- $v := index . 0 }}{{- $file := index . 1 }}
{{- if or (kindIs "map" $v) $v }}{{ include "medic.secretsDir" dict }}/{{ $file }}{{- end }}
{{- end }}

{{/* Whether the chart creates its own Secret (some secret is given as a string). */}}
{{- define "medic.chartSecret" -}}
{{- $entries := (include "medic.secrets" . | fromYaml).entries | default list }}
{{- range $entries }}{{- if hasKey . "value" }}true{{- end }}{{- end }}
{{- end }}

{{/*
Checks that fail the render with a message naming the value.
*/}}
{{- define "medic.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.nats.url) }}
{{- fail "replicas: embedded NATS keeps JetStream's files in one pod's volume, so replicas must be 1; set nats.url to an external NATS to run more" }}
{{- end }}
{{- $streamReplicas := int .Values.nats.streamReplicas }}
{{- if or (lt $streamReplicas 1) (gt $streamReplicas 5) }}
{{- fail (printf "nats.streamReplicas: %d is not between 1 and 5 (JetStream's limit); 3 on a three-node NATS cluster" $streamReplicas) }}
{{- end }}
{{- if and (gt $streamReplicas 1) (not .Values.nats.url) }}
{{- fail "nats.streamReplicas: embedded NATS is a single server, so streamReplicas must be 1; set nats.url to a NATS cluster to replicate streams" }}
{{- end }}
{{- if not (has .Values.rbac.scope (list "cluster" "namespaced")) }}
{{- fail (printf "rbac.scope: %q is not cluster or namespaced" .Values.rbac.scope) }}
{{- end }}
{{- if and .Values.rbac.create (eq .Values.rbac.scope "namespaced") (not .Values.kubernetes.namespaces) }}
{{- fail "rbac.scope namespaced: list the namespaces medic reads in kubernetes.namespaces" }}
{{- end }}
{{- range $i, $r := .Values.rbac.extraRules }}
{{- range $r.verbs }}{{- if not (has . (list "get" "list" "watch")) }}
{{- fail (printf "rbac.extraRules[%d].verbs: %q is refused: medic's role is read-only (get, list, watch)" $i .) }}
{{- end }}{{- end }}
{{- range (concat ($r.apiGroups | default list) ($r.resources | default list) ($r.resourceNames | default list)) }}{{- if contains "*" . }}
{{- fail (printf "rbac.extraRules[%d]: wildcards are refused; name the API groups and resources" $i) }}
{{- end }}{{- end }}
{{- range $r.resources }}{{- if or (eq . "secrets") (hasPrefix "secrets/" .) }}
{{- fail (printf "rbac.extraRules[%d].resources: medic never reads Secrets" $i) }}
{{- end }}{{- end }}
{{- if $r.nonResourceURLs }}
{{- fail (printf "rbac.extraRules[%d]: nonResourceURLs are not needed by medic" $i) }}
{{- end }}
{{- end }}
{{- if and (eq .Values.knowledgeBase.store "weaviate") (not .Values.knowledgeBase.weaviate.url) }}
{{- fail "knowledgeBase.weaviate.url: required when knowledgeBase.store is weaviate" }}
{{- end }}
{{- range $i, $s := .Values.sinksConfig }}
{{- if or (not $s.name) (not $s.type) }}
{{- fail (printf "sinksConfig[%d]: every sink needs a name and a type" $i) }}
{{- end }}
{{- end }}
{{- range $name, $repo := .Values.playbookRepos }}
{{- if not $repo.url }}
{{- fail (printf "playbookRepos.%s.url: required" $name) }}
{{- end }}
{{- end }}
{{- range $name, $src := .Values.webhookSources }}
{{- if and (not $src.preset) (not $src.mapping) }}
{{- fail (printf "webhookSources.%s: set a preset (argocd, flux, kubecost) or a mapping" $name) }}
{{- end }}
{{- if and (not $src.bearerToken) (not $src.password) (not $src.hmacSecret) }}
{{- fail (printf "webhookSources.%s: set bearerToken, username and password, or hmacSecret; a webhook source without credentials would let anyone inject findings" $name) }}
{{- end }}
{{- end }}
{{- include "medic.noSecretsIn" (list .Values.config "config") }}
{{- end }}

{{/* Refuses secret-looking keys in the free-form `config` (it becomes the ConfigMap). */}}
{{- define "medic.noSecretsIn" -}}
{{- $v := index . 0 }}{{- $path := index . 1 }}
{{- if kindIs "map" $v }}
{{- range $k, $x := $v }}
{{- if and (has $k (list "bearer_token" "password" "api_key" "webhook_secret" "bot_token" "signing_secret" "app_token" "token" "webhook_url" "secret" "credentials")) (kindIs "string" $x) $x }}
{{- fail (printf "%s.%s: a secret must not go in `config` (it becomes a ConfigMap); use the chart's secret values, or %s_file with a volume from extraVolumes" $path $k $k) }}
{{- end }}
{{- include "medic.noSecretsIn" (list $x (printf "%s.%s" $path $k)) }}
{{- end }}
{{- else if kindIs "slice" $v }}
{{- range $i, $x := $v }}
{{- include "medic.noSecretsIn" (list $x (printf "%s[%d]" $path $i)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
RBAC rules. deploy/rbac holds the same rules as plain manifests;
test/deploy checks that they agree.
*/}}
{{- define "medic.clusterRules" -}}
- apiGroups: [""]
  resources: [pods, events, nodes, services, endpoints, configmaps, namespaces, persistentvolumeclaims, persistentvolumes, replicationcontrollers]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [deployments, replicasets, statefulsets, daemonsets]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list, watch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
{{- end }}

{{- define "medic.namespacedRules" -}}
- apiGroups: [""]
  resources: [pods, events, services, endpoints, configmaps, persistentvolumeclaims, replicationcontrollers]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [deployments, replicasets, statefulsets, daemonsets]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list, watch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, watch]
{{- end }}

{{- define "medic.nodeRules" -}}
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
{{- end }}
