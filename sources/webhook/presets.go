package webhook

// Preset is a ready mapping for a tool's webhook.
type Preset struct {
	Doc string
	// Mapping is the preset's field → CEL expression.
	Mapping map[string]string
	// HMACHeader is where the tool puts its body signature, when it signs.
	HMACHeader string
}

// Presets are the ready mappings, by name. Their sample payloads are in
// testdata/<name>.json, written from each tool's documentation.
var Presets = map[string]Preset{
	// Argo CD notifications' webhook service posts the body its template
	// renders; docs/webhook-sources.md gives the template this preset reads
	// (app, project, namespace, sync and health status, phase, revision,
	// message, trigger, url). Argo CD does not sign: use a bearer token
	// (the service's headers: Authorization: Bearer …).
	"argocd": {
		Doc: "Argo CD notifications (webhook service, medic's template)",
		Mapping: map[string]string{
			"title": `"Argo CD application " + body.app + ": " + body.?trigger.orValue("notification") + ` +
				`" (sync " + body.?sync_status.orValue("unknown") + ", health " + body.?health_status.orValue("unknown") + ")"`,
			"description": `body.?message.orValue("")`,
			"severity": `body.?health_status.orValue("") == "Degraded" || body.?operation_phase.orValue("") in ["Failed", "Error"] ? "high" : ` +
				`(body.?health_status.orValue("") == "Healthy" ? "info" : "warning")`,
			"status":            `body.?health_status.orValue("") == "Healthy" && body.?operation_phase.orValue("Succeeded") == "Succeeded" ? "resolved" : "firing"`,
			"id":                `body.app + "/" + body.?trigger.orValue("") + "/" + body.?revision.orValue("") + "/" + body.?finished_at.orValue("")`,
			"url":               `body.?url.orValue("")`,
			"subject.kind":      `"Application"`,
			"subject.namespace": `body.?namespace.orValue("")`,
			"subject.name":      `body.app`,
			"labels": `{"tool": "argocd", "app": body.app, "project": body.?project.orValue(""), "trigger": body.?trigger.orValue(""), ` +
				`"sync_status": body.?sync_status.orValue(""), "health_status": body.?health_status.orValue(""), "revision": body.?revision.orValue("")}`,
		},
	},
	// Flux's notification-controller generic and generic-hmac providers
	// post the event as it is (fluxcd/pkg/apis/event.Event): involvedObject,
	// severity (info or error), timestamp, message, reason, metadata,
	// reportingController. generic-hmac signs the body with the Secret's
	// token in X-Signature: sha256=<hex>.
	"flux": {
		Doc:        "Flux notification-controller (generic / generic-hmac provider)",
		HMACHeader: "X-Signature",
		Mapping: map[string]string{
			"title":             `"Flux " + body.involvedObject.kind + " " + body.involvedObject.?namespace.orValue("") + "/" + body.involvedObject.name + ": " + body.reason`,
			"description":       `body.?message.orValue("")`,
			"severity":          `body.?severity.orValue("info") == "error" ? "high" : "info"`,
			"status":            `body.?severity.orValue("info") == "error" ? "firing" : "resolved"`,
			"id":                `body.involvedObject.?uid.orValue(body.involvedObject.name) + "/" + body.reason + "/" + body.?metadata.?revision.orValue("") + "/" + body.?timestamp.orValue("")`,
			"starts_at":         `body.?timestamp`,
			"subject.kind":      `body.involvedObject.kind`,
			"subject.namespace": `body.involvedObject.?namespace.orValue("")`,
			"subject.name":      `body.involvedObject.name`,
			"labels": `{"tool": "flux", "reason": body.reason, "controller": body.?reportingController.orValue(""), ` +
				`"revision": body.?metadata.?revision.orValue(""), "flux_severity": body.?severity.orValue("")}`,
		},
	},
	// Kubecost sends its alerts (budget, spend change, efficiency) to a
	// Slack-compatible webhook: {"text": "..."} with the details in the
	// text. Point the alert's slackWebhookUrl at medic (basic auth in the
	// URL: https://user:password@medic/api/webhooks/kubecost). OpenCost has
	// no alerting of its own: its budget alerts are Prometheus rules over
	// its metrics and reach medic through Alertmanager.
	"kubecost": {
		Doc: "Kubecost alerts (budget, spend change, efficiency) posted to a Slack-compatible webhook",
		Mapping: map[string]string{
			"title":             `"Kubecost: " + body.?text.orValue("alert").split("\n")[0]`,
			"description":       `body.?text.orValue("")`,
			"severity":          `body.?text.orValue("").lowerAscii().contains("exceeded") ? "warning" : "info"`,
			"subject.namespace": `regex.extract(body.?text.orValue(""), r"[Nn]amespace:? +([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)").orValue("")`,
			"labels":            `{"tool": "kubecost"}`,
		},
	},
}
