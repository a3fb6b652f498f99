package app

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/medichq/medic/internal/memtrim"
	"github.com/medichq/medic/sources/alertmanager"
	"github.com/medichq/medic/sources/httpauth"
	"github.com/medichq/medic/sources/manual"
)

func (a *App) routes() (http.Handler, error) {
	auth := httpauth.Auth{
		BearerToken: a.cfg.Webhook.BearerToken,
		Username:    a.cfg.Webhook.Username,
		Password:    a.cfg.Webhook.Password,
	}
	metrics, err := alertmanager.NewMetrics(a.registry)
	if err != nil {
		return nil, err
	}
	// One bound for both intake endpoints: their bodies and batches share
	// medic's memory.
	inFlight := alertmanager.NewInFlight(a.cfg.Webhook.MaxInFlight, alertmanager.DefaultInFlightWait)
	wh := a.cfg.Webhook
	caps := alertmanager.Caps{MaxAlerts: wh.MaxAlertsPerRequest, MaxDecodedBytes: wh.MaxDecodedBytes,
		Budget: alertmanager.NewDecodeBudget(wh.MaxInFlightDecodedBytes, alertmanager.DefaultInFlightWait)}
	alerts, err := alertmanager.NewHandler(alertmanager.Options{MaxBodyBytes: wh.MaxBodyBytes, Auth: auth, InFlight: inFlight, BodyTimeout: wh.BodyTimeout, Caps: caps},
		a.bus, a.logger.With("component", "alertmanager"), a.registry)
	if err != nil {
		return nil, err
	}
	trigger, err := manual.NewHandler(manual.Options{MaxBodyBytes: wh.MaxBodyBytes, Auth: auth, InFlight: inFlight, BodyTimeout: wh.BodyTimeout, Caps: caps},
		a.bus, a.logger.With("component", "manual"), metrics)
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("/api/alerts", alerts)
	mux.Handle("/api/trigger", trigger)
	if err := a.webhookSourceRoutes(mux, inFlight, caps, metrics); err != nil { // webhooksources.go
		return nil, err
	}
	mux.HandleFunc("POST /api/playbooks/reload", func(w http.ResponseWriter, r *http.Request) {
		if !auth.Check(r) {
			auth.Challenge(w.Header())
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		changed, err := a.Reload(r.Context())
		set := a.store.Current()
		body := map[string]any{"changed": changed, "version": set.Version, "playbooks": len(set.Playbooks)}
		if fe := a.playbookFetchErrors(); fe != nil {
			body["fetch_errors"] = fe // the running set stays; not a refusal of content
		}
		if err != nil {
			// The old set keeps running; 422 says the new content was refused.
			body["error"] = err.Error()
			writeJSON(w, http.StatusUnprocessableEntity, body)
			return
		}
		writeJSON(w, http.StatusOK, body)
	})
	mux.HandleFunc("POST /api/playbooks/webhook", a.playbookWebhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry}))
	if a.cfg.HTTP.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	a.chatRoutes(mux) // chat.go: /slack/interactions, /slack/events, /findings/{id}
	// dlq.go: /api/dlq
	if err := a.dlqRoutes(mux, auth); err != nil {
		return nil, err
	}
	return wakeOnWork(mux, memtrim.Wake), nil
}

// wakeOnWork ends the binary's idle paging (memtrim.Wake) on every request
// but the probes and scrapes an idle pod gets all day: those are what idle
// paging keeps small; an alert or a chat click is work, and its code is
// better read back at read-around size.
func wakeOnWork(next http.Handler, wake func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
		default:
			wake()
		}
		next.ServeHTTP(w, r)
	})
}

// ready answers 200 while the bus is connected and a playbook set is loaded.
// A rejected reload does not make medic unready: the last good set runs.
func (a *App) ready(w http.ResponseWriter, _ *http.Request) {
	checks := map[string]string{}
	status := http.StatusOK
	if err := a.bus.Healthy(); err != nil {
		checks["bus"] = err.Error()
		status = http.StatusServiceUnavailable
	} else {
		checks["bus"] = "ok"
	}
	if set := a.store.Current(); set == nil {
		checks["playbooks"] = "not loaded"
		status = http.StatusServiceUnavailable
	} else {
		checks["playbooks"] = "ok " + set.Version
		if err := a.store.LastError(); err != nil {
			checks["playbooks_pending"] = "newest content rejected: " + err.Error()
		}
		a.playbookRepoChecks(checks)
	}
	writeJSON(w, status, checks)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
