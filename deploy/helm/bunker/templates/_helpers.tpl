{{/* The namespace the operator and the agent run in. */}}
{{- define "bunker.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* Labels of every object: the manifests' part-of and Helm's own. */}}
{{- define "bunker.labels" -}}
app.kubernetes.io/part-of: bunker
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The bunker image. */}}
{{- define "bunker.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | toString) -}}
{{- end -}}

{{/* The container's image and pull policy. */}}
{{- define "bunker.containerImage" -}}
image: {{ include "bunker.image" . | quote }}
{{- with .Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end -}}

{{/*
The flags the operator and the agent share: the admin namespaces, the
watched namespace and the tenants' repository policy. Each is a list item.
*/}}
{{- define "bunker.sharedArgs" -}}
{{- with .Values.adminNamespaces }}
- {{ printf "--admin-namespace=%s" (join "," .) | quote }}
{{- end }}
{{- with .Values.watchNamespace }}
- {{ printf "--namespace=%s" . | quote }}
{{- end }}
{{- with .Values.tenant.schemes }}
- {{ printf "--tenant-schemes=%s" (join "," .) | quote }}
{{- end }}
{{- with .Values.tenant.hosts }}
- {{ printf "--tenant-hosts=%s" (join "," .) | quote }}
{{- end }}
{{- if .Values.tenant.ambientCredentials }}
- --tenant-ambient-credentials
{{- end }}
{{- end -}}

{{/*
Whether the operator backs up volume files itself: operator.nodeVolumes
when set, else only when there is no node agent.
*/}}
{{- define "bunker.nodeVolumes" -}}
{{- if kindIs "bool" .Values.operator.nodeVolumes -}}
{{- .Values.operator.nodeVolumes -}}
{{- else if eq (toString .Values.operator.nodeVolumes) "" -}}
{{- not .Values.agent.enabled -}}
{{- else -}}
{{- fail (printf "operator.nodeVolumes is %q: want true, false or empty" (toString .Values.operator.nodeVolumes)) -}}
{{- end -}}
{{- end -}}

{{/* The Jobs' service account is created here (job mode). */}}
{{- define "bunker.jobServiceAccount" -}}
{{- if and (eq .Values.operator.mode "job") .Values.operator.job.createServiceAccount -}}true{{- end -}}
{{- end -}}
