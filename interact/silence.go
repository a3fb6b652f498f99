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
