package interact

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/silence"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/chatfmt"
	sslack "github.com/medichq/medic/sinks/slack"
)

// createSilence creates a silence matching every label of the alert
// exactly, through Alertmanager's API v2 client, and returns its ID.
func (s *Service) createSilence(ctx context.Context, amURL string, labels map[string]string, starts, ends time.Time, createdBy, comment string) (string, error) {
	u, err := url.Parse(amURL)
	if err != nil {
		return "", fmt.Errorf("alertmanager URL: %w", err)
	}
	base := strings.TrimSuffix(u.Path, "/") + amclient.DefaultBasePath
	tr := httptransport.NewWithClient(u.Host, base, []string{u.Scheme}, s.o.HTTPClient)
	if s.o.AlertmanagerToken != nil {
		tok, err := s.o.AlertmanagerToken()
		if err != nil {
			return "", err
		}
		if tok != "" {
			tr.DefaultAuthentication = httptransport.BearerToken(tok)
		}
	}
	api := amclient.New(tr, strfmt.Default)

	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	matchers := make(models.Matchers, 0, len(names))
	for _, k := range names {
		matchers = append(matchers, &models.Matcher{Name: ptr(k), Value: ptr(labels[k]), IsRegex: ptr(false), IsEqual: ptr(true)})
	}
	st, en := strfmt.DateTime(starts.UTC()), strfmt.DateTime(ends.UTC())
	body := &models.PostableSilence{Silence: models.Silence{
		Matchers: matchers, StartsAt: &st, EndsAt: &en, CreatedBy: &createdBy, Comment: &comment,
	}}
	ctx, cancel := context.WithTimeout(ctx, s.o.AlertmanagerTimeout)
	defer cancel()
	ok, err := api.Silence.PostSilences(silence.NewPostSilencesParamsWithContext(ctx).WithSilence(body))
	if err != nil {
		return "", fmt.Errorf("create silence in Alertmanager: %w", redactAPIError(err))
	}
	return ok.Payload.SilenceID, nil
}

func ptr[T any](v T) *T { return &v }

// redactAPIError keeps the API's answer and drops request details.
func redactAPIError(err error) error {
	if ae, ok := err.(*runtime.APIError); ok {
		return fmt.Errorf("Alertmanager answered %d", ae.Code)
	}
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// silenceTarget is the Alertmanager a silence (and its bearer token) may go
// to: alertmanager.url, else the alert's externalURL when
// alertmanager.allowed_urls lists it, else "". The externalURL comes from
// whoever posted the alert, so on its own it is only ever shown, never
// called.
func (s *Service) silenceTarget(externalURL string) string {
	if s.o.AlertmanagerURL != "" {
		return s.o.AlertmanagerURL
	}
	if chatfmt.IsWebURL(externalURL) && urlAllowed(externalURL, s.o.AlertmanagerAllowed) {
		return externalURL
	}
	return ""
}

// urlAllowed reports whether raw has the scheme and host of an allowed
// URL and a path under its path (on a segment boundary, so /am does not
// allow /amx). User info in raw never matches: it would be a second
// credential chosen by the alert.
func urlAllowed(raw string, allowed []string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" {
		return false
	}
	path := strings.TrimSuffix(u.Path, "/") + "/"
	for _, a := range allowed {
		au, err := url.Parse(a)
		if err != nil || au.Host == "" {
			continue
		}
		if strings.EqualFold(u.Scheme, au.Scheme) && strings.EqualFold(u.Host, au.Host) &&
			strings.HasPrefix(path, strings.TrimSuffix(au.Path, "/")+"/") {
			return true
		}
	}
	return false
}

// cannotSilence says why the button did nothing, and points at the alert's
// own Alertmanager for a silence by hand (a link people open in their
// browser, with their own credentials).
func cannotSilence(ev *event.Event) string {
	text := "⚠ medic creates silences only in the Alertmanager its operator configured, and none is: set alertmanager.url"
	if chatfmt.IsWebURL(ev.ExternalURL) {
		text += " (or list this alert's Alertmanager in alertmanager.allowed_urls). The alert names " +
			sslack.Escape(ev.ExternalURL) + ", which medic does not send its token to"
		if u := ev.SilenceURL(); u != "" {
			text += "; " + sslack.Link(u, "silence it there by hand")
		}
	}
	return text + "."
}
