{{/*
medic's own medic.yaml (see deploy/medic.example.yaml for every key). No
secret is written here: secret values become `*_file` keys pointing at files
mounted from Secrets. `config` is merged over the result in configmap.yaml.
*/}}
{{- define "medic.config" -}}
{{- $dataDir := include "medic.dataDir" . -}}
{{- if .Values.clusterName }}
cluster_name: {{ .Values.clusterName | quote }}
{{- end }}
data_dir: {{ $dataDir }}
log:
  level: {{ .Values.logLevel }}
  format: {{ .Values.logFormat }}
http:
  addr: ":8080"
bus:
  {{- if .Values.nats.url }}
  url: {{ .Values.nats.url | quote }}
  {{- with include "medic.secretPath" (list .Values.nats.credentials "nats.creds") }}
  credentials_file: {{ . }}
  {{- end }}
  replicas: {{ .Values.nats.streamReplicas }}
  {{- else }}
  store_dir: {{ $dataDir }}/jetstream
  {{- end }}
  retention: {{ .Values.nats.retention }}
  alert_state_ttl: {{ .Values.nats.alertStateTTL }}
  alert_state_max_records: {{ int64 .Values.nats.alertStateMaxRecords }}
  delivery_max_records: {{ int64 .Values.nats.deliveryMaxRecords }}
  max_bytes: {{ int64 .Values.nats.maxBytes }}
webhook:
  max_body_bytes: {{ int64 .Values.webhook.maxBodyBytes }}
  max_alerts_per_request: {{ int64 .Values.webhook.maxAlertsPerRequest }}
  max_decoded_bytes: {{ int64 .Values.webhook.maxDecodedBytes }}
  max_in_flight_decoded_bytes: {{ int64 .Values.webhook.maxInFlightDecodedBytes }}
  {{- with include "medic.secretPath" (list .Values.webhook.bearerToken "webhook-bearer-token") }}
  bearer_token_file: {{ . }}
  {{- end }}
playbooks:
  {{- if .Values.customPlaybooks }}
  dirs: [{{ include "medic.playbooksDir" . }}]
  {{- else }}
  dirs: []
  {{- end }}
  builtin: {{ .Values.playbooks.builtin }}
  disabled: {{ .Values.disabledPlaybooks | default list | toJson }}
  {{- with .Values.playbooks.adminSink }}
  admin_sink: {{ . | quote }}
  {{- end }}
  {{- with include "medic.secretPath" (list .Values.playbooks.webhookSecret "playbooks-webhook-secret") }}
  webhook_secret_file: {{ . }}
  {{- end }}
{{- if .Values.playbookRepos }}
playbook_repos:
{{- range $name, $repo := .Values.playbookRepos }}
  - name: {{ $name | quote }}
    url: {{ $repo.url | quote }}
    {{- with $repo.branch }}
    branch: {{ . | quote }}
    {{- end }}
    {{- with $repo.path }}
    path: {{ . | quote }}
    {{- end }}
    {{- if hasKey $repo "pollInterval" }}
    poll_interval: {{ $repo.pollInterval }}
    {{- end }}
    {{- $token := include "medic.secretPath" (list $repo.token (printf "repo-%s-token" $name)) }}
    {{- $key := include "medic.secretPath" (list $repo.sshKey (printf "repo-%s-ssh-key" $name)) }}
    {{- $hosts := include "medic.secretPath" (list $repo.knownHosts (printf "repo-%s-known-hosts" $name)) }}
    {{- if or $token $key $hosts $repo.username }}
    auth:
      {{- with $repo.username }}
      username: {{ . | quote }}
      {{- end }}
      {{- with $token }}
      token_file: {{ . }}
      {{- end }}
      {{- with $key }}
      ssh_key_file: {{ . }}
      {{- end }}
      {{- with $hosts }}
      known_hosts_file: {{ . }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end }}
{{- if .Values.webhookSources }}
webhook_sources:
{{- range $name, $src := .Values.webhookSources }}
  - name: {{ $name | quote }}
    {{- with $src.preset }}
    preset: {{ . | quote }}
    {{- end }}
    {{- with $src.mapping }}
    mapping: {{ toJson . }}
    {{- end }}
    auth:
      {{- with include "medic.secretPath" (list $src.bearerToken (printf "webhook-source-%s-bearer-token" $name)) }}
      bearer_token_file: {{ . }}
      {{- end }}
      {{- with $src.username }}
      username: {{ . | quote }}
      {{- end }}
      {{- with include "medic.secretPath" (list $src.password (printf "webhook-source-%s-password" $name)) }}
      password_file: {{ . }}
      {{- end }}
      {{- with include "medic.secretPath" (list $src.hmacSecret (printf "webhook-source-%s-hmac-secret" $name)) }}
      hmac_secret_file: {{ . }}
      {{- end }}
      {{- with $src.hmacHeader }}
      hmac_header: {{ . | quote }}
      {{- end }}
{{- end }}
{{- end }}
{{- if .Values.sinksConfig }}
sinks:
{{- range $sink := .Values.sinksConfig }}
  {{- $out := dict }}
  {{- range $k, $v := $sink }}
  {{- if include "medic.isSecretSinkParam" (list $k $v) }}
  {{- $_ := set $out (printf "%s_file" $k) (printf "%s/sink-%s-%s" (include "medic.secretsDir" dict) $sink.name $k) }}
  {{- else }}
  {{- $_ := set $out $k $v }}
  {{- end }}
  {{- end }}
  - {{- toYaml $out | nindent 4 }}
{{- end }}
{{- end }}
ai:
  {{- with .Values.ai.baseUrl }}
  base_url: {{ . | quote }}
  {{- end }}
  {{- with .Values.ai.chatModel }}
  chat_model: {{ . | quote }}
  {{- end }}
  {{- with .Values.ai.embeddingModel }}
  embedding_model: {{ . | quote }}
  {{- end }}
  {{- with include "medic.secretPath" (list .Values.ai.apiKey "ai-api-key") }}
  api_key_file: {{ . }}
  {{- end }}
  timeout: {{ .Values.ai.timeout }}
  {{- with .Values.ai.language }}
  language: {{ . | quote }}
  {{- end }}
  {{- with .Values.ai.agentDenyNamespaces }}
  agent:
    namespaces:
      deny: {{ . | toJson }}
  {{- end }}
knowledge_base:
  store: {{ .Values.knowledgeBase.store }}
  dir: {{ $dataDir }}/kb
  default_runbooks: {{ .Values.knowledgeBase.defaultRunbooks }}
  sources: {{ .Values.knowledgeBase.sources | default list | toJson }}
  {{- with .Values.knowledgeBase.synonyms }}
  synonyms: {{ toJson . }}
  {{- end }}
  {{- if eq .Values.knowledgeBase.store "weaviate" }}
  weaviate:
    url: {{ .Values.knowledgeBase.weaviate.url | quote }}
    collection: {{ .Values.knowledgeBase.weaviate.collection }}
    {{- with .Values.knowledgeBase.weaviate.tenant }}
    tenant: {{ . | quote }}
    {{- end }}
    {{- with include "medic.secretPath" (list .Values.knowledgeBase.weaviate.apiKey "weaviate-api-key") }}
    api_key_file: {{ . }}
    {{- end }}
  {{- end }}
{{- with .Values.prometheusUrl }}
prometheus:
  url: {{ . | quote }}
{{- end }}
kubernetes:
  disabled: {{ not .Values.kubernetes.enabled }}
  in_cluster: "true"
  namespaces: {{ .Values.kubernetes.namespaces | default list | toJson }}
  {{- if .Values.kubernetes.helmReleases }}
  helm_releases: true
  {{- end }}
{{- $slackToken := include "medic.secretPath" (list .Values.slack.botToken "slack-bot-token") }}
{{- $slackSigning := include "medic.secretPath" (list .Values.slack.signingSecret "slack-signing-secret") }}
{{- $slackApp := include "medic.secretPath" (list .Values.slack.appToken "slack-app-token") }}
{{- if or $slackToken $slackSigning $slackApp .Values.slack.socketMode }}
slack:
  {{- with $slackToken }}
  bot_token_file: {{ . }}
  {{- end }}
  {{- with $slackSigning }}
  signing_secret_file: {{ . }}
  {{- end }}
  {{- if .Values.slack.socketMode }}
  socket_mode: true
  {{- end }}
  {{- with $slackApp }}
  app_token_file: {{ . }}
  {{- end }}
{{- end }}
{{- with .Values.publicUrl }}
public_url: {{ . | quote }}
{{- end }}
{{- with .Values.alertmanagerUrl }}
alertmanager:
  url: {{ . | quote }}
{{- end }}
{{- if .Values.remediation.enabled }}
remediation:
  enabled: true
  allowed: {{ toJson .Values.remediation.allowed }}
  approvers: {{ toJson .Values.remediation.approvers }}
  require_approval: {{ .Values.remediation.requireApproval }}
{{- end }}
{{- end }}
