{{/* The install namespace; anything but meshlet-system is refused (see values.yaml). */}}
{{- define "meshlet.namespace" -}}
{{- if ne .Values.namespace "meshlet-system" -}}
{{- fail "namespace: Meshlet runs in meshlet-system only (the CRDs' conversion webhook and the operator's TLS name refer to it)" -}}
{{- end -}}
meshlet-system
{{- end -}}

{{/* Labels on every object; COMPONENT is operator or webhook. */}}
{{- define "meshlet.labels" -}}
app.kubernetes.io/name: meshlet
app.kubernetes.io/part-of: meshlet
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
meshlet.dev/component: {{ . }}
{{- end }}
{{- end -}}

{{/* Pod selector of a component. */}}
{{- define "meshlet.selector" -}}
app.kubernetes.io/part-of: meshlet
meshlet.dev/component: {{ . }}
{{- end -}}

{{/* registry/name:tag of one of Meshlet's images: (dict "root" $ "name" "operator" "tag" "") */}}
{{- define "meshlet.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .name (default .root.Values.image.tag .tag) -}}
{{- end -}}

{{/* Pod and container security settings shared by operator and webhook. */}}
{{- define "meshlet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "meshlet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
{{- end -}}

{{/* PodDisruptionBudget body: with one replica, a budget of minAvailable 1
would block every node drain, so allow one pod down; with more, keep one up. */}}
{{- define "meshlet.pdbSpec" -}}
{{- if gt (int .replicas) 1 }}
minAvailable: 1
{{- else }}
maxUnavailable: 1
{{- end }}
selector:
  matchLabels:
    {{- include "meshlet.selector" .component | nindent 4 }}
{{- end -}}

{{- define "meshlet.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
