package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/internal/indexpattern"
)

// Names of what Setup installs. The index template matches every dbprobe
// dataset and namespace, with a priority above the built-in logs-*-*
// template (100) so dbprobe's mappings win.
const (
	PolicyName        = "dbprobe"
	MappingsComponent = "dbprobe-mappings"
	SettingsComponent = "dbprobe-settings"
	TemplateName      = "dbprobe"
	IndexPattern      = "logs-dbprobe-*"
	TemplatePriority  = 200
)

// mappingsJSON maps every field of event.Event; a test keeps the two in
// step.
//
//go:embed mappings.json
var mappingsJSON []byte

// MappingsVersion identifies the mappings' content; it is stored in the
// mappings' _meta so Setup can tell a data stream still written with older
// mappings and roll it over.
var MappingsVersion = func() string {
	sum := sha256.Sum256(mappingsJSON)
	return hex.EncodeToString(sum[:6])
}()

// Mappings returns the mappings dbprobe installs, _meta included.
func Mappings() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(mappingsJSON, &m); err != nil {
		panic(fmt.Sprintf("mappings.json: %v", err)) // embedded at build time; a test parses it
	}
	m["_meta"] = map[string]any{"managed_by": "dbprobe", "mappings_version": MappingsVersion}
	return m
}

// SetupError says which setup step failed and what the user must change;
// Fix is empty when the failure is transient and retrying is enough.
type SetupError struct {
	Step string
	Fix  string
	Err  error
}

func (e *SetupError) Error() string {
	if e.Fix == "" {
		return fmt.Sprintf("elasticsearch setup: %s: %v", e.Step, e.Err)
	}
	return fmt.Sprintf("elasticsearch setup: %s: %v; to fix: %s", e.Step, e.Err, e.Fix)
}

func (e *SetupError) Unwrap() error { return e.Err }

// Setup installs the ILM policy, the component and index templates and the
// data stream cfg names, and rolls the data stream over when its write
// index was created with other mappings. It is idempotent: dbprobe runs it
// on every start. The user needs the cluster privileges monitor, manage_ilm
// and manage_index_templates, and the index privilege manage on the data
// stream.
func (c *Client) Setup(ctx context.Context, cfg *config.Elasticsearch) (rolledOver bool, err error) {
	stream := cfg.DataStream()
	if err := c.checkVersion(ctx); err != nil {
		return false, err
	}
	policy := map[string]any{"hot": map[string]any{"actions": map[string]any{
		"rollover": map[string]any{"max_primary_shard_size": "50gb", "max_age": "30d"}}}}
	if d := cfg.DeleteAfter.Duration; d > 0 {
		policy["delete"] = map[string]any{"min_age": esDuration(d), "actions": map[string]any{"delete": map[string]any{}}}
	}
	meta := map[string]any{"managed_by": "dbprobe", "description": "dbprobe probe events and findings"}
	steps := []struct {
		name string
		req  func(body *bytes.Reader) esapi.Request
		body any
	}{
		{"ILM policy " + PolicyName, func(b *bytes.Reader) esapi.Request {
			return esapi.ILMPutLifecycleRequest{Policy: PolicyName, Body: b}
		}, map[string]any{"policy": map[string]any{"phases": policy, "_meta": meta}}},
		{"component template " + SettingsComponent, func(b *bytes.Reader) esapi.Request {
			return esapi.ClusterPutComponentTemplateRequest{Name: SettingsComponent, Body: b}
		}, map[string]any{"template": map[string]any{"settings": map[string]any{"index.lifecycle.name": PolicyName}}, "_meta": meta}},
		{"component template " + MappingsComponent, func(b *bytes.Reader) esapi.Request {
			return esapi.ClusterPutComponentTemplateRequest{Name: MappingsComponent, Body: b}
		}, map[string]any{"template": map[string]any{"mappings": Mappings()}, "_meta": meta}},
	}
	for _, st := range steps {
		if err := c.put(ctx, st.name, st.req, st.body); err != nil {
			return false, err
		}
	}
	if err := c.checkShadowing(ctx, stream); err != nil {
		return false, err
	}
	tmpl := map[string]any{
		"index_patterns": []string{IndexPattern},
		"data_stream":    map[string]any{},
		"composed_of":    []string{SettingsComponent, MappingsComponent},
		"priority":       TemplatePriority,
		"_meta":          meta,
	}
	if err := c.put(ctx, "index template "+TemplateName, func(b *bytes.Reader) esapi.Request {
		return esapi.IndicesPutIndexTemplateRequest{Name: TemplateName, Body: b}
	}, tmpl); err != nil {
		return false, err
	}
	step := "data stream " + stream
	err = c.call(ctx, esapi.IndicesCreateDataStreamRequest{Name: stream}, nil)
	var re *ResponseError
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &re) && re.Type == "resource_already_exists_exception":
	default:
		return false, setupError(step, err)
	}
	current, err := c.writeIndexMappingsVersion(ctx, stream)
	if err != nil {
		return false, setupError(step, err)
	}
	if current == MappingsVersion {
		return false, nil
	}
	// The write index was created before these mappings existed (or by
	// another template): roll over so new documents get them.
	if err := c.call(ctx, esapi.IndicesRolloverRequest{Alias: stream}, nil); err != nil {
		return false, setupError("rollover of "+stream, err)
	}
	return true, nil
}

func (c *Client) put(ctx context.Context, step string, req func(*bytes.Reader) esapi.Request, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", step, err)
	}
	if err := c.call(ctx, req(bytes.NewReader(b)), nil); err != nil {
		return setupError(step, err)
	}
	return nil
}

// checkVersion refuses clusters older than 8.0, whose mappings lack types
// dbprobe uses.
func (c *Client) checkVersion(ctx context.Context) error {
	var info struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	if err := c.call(ctx, esapi.InfoRequest{}, &info); err != nil {
		return setupError("contacting the cluster", err)
	}
	major, _, _ := strings.Cut(info.Version.Number, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 8 {
		return &SetupError{Step: "version check", Err: fmt.Errorf("the cluster runs Elasticsearch %q", info.Version.Number),
			Fix: "use Elasticsearch 8.0 or newer"}
	}
	return nil
}

// checkShadowing fails when another index template matching the data
// stream has a higher priority: Elasticsearch would use it instead of
// dbprobe's, silently, and documents would get the wrong mappings.
func (c *Client) checkShadowing(ctx context.Context, stream string) error {
	var all struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				IndexPatterns []string `json:"index_patterns"`
				Priority      int64    `json:"priority"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if err := c.call(ctx, esapi.IndicesGetIndexTemplateRequest{}, &all); err != nil {
		return setupError("listing index templates", err)
	}
	var winners []string
	for _, t := range all.IndexTemplates {
		if t.Name == TemplateName || t.IndexTemplate.Priority <= TemplatePriority {
			continue
		}
		for _, p := range t.IndexTemplate.IndexPatterns {
			if indexpattern.Match(p, stream) {
				winners = append(winners, fmt.Sprintf("%s (priority %d, index_patterns %v)", t.Name, t.IndexTemplate.Priority, t.IndexTemplate.IndexPatterns))
				break
			}
		}
	}
	if len(winners) == 0 {
		return nil
	}
	sort.Strings(winners)
	return &SetupError{Step: "index template " + TemplateName,
		Err: fmt.Errorf("index template %s matches %s with a higher priority than dbprobe's (%d), so dbprobe's mappings would not apply", strings.Join(winners, ", "), stream, TemplatePriority),
		Fix: "change that template's index_patterns or lower its priority below 200, or set sinks.elasticsearch.setup: false and manage the templates yourself"}
}

// writeIndexMappingsVersion returns the mappings_version in the _meta of
// the data stream's write index ("" when absent).
func (c *Client) writeIndexMappingsVersion(ctx context.Context, stream string) (string, error) {
	var ds struct {
		DataStreams []struct {
			Indices []struct {
				Name string `json:"index_name"`
			} `json:"indices"`
		} `json:"data_streams"`
	}
	if err := c.call(ctx, esapi.IndicesGetDataStreamRequest{Name: []string{stream}}, &ds); err != nil {
		return "", err
	}
	if len(ds.DataStreams) == 0 || len(ds.DataStreams[0].Indices) == 0 {
		return "", fmt.Errorf("data stream %s has no backing index", stream)
	}
	idx := ds.DataStreams[0].Indices
	write := idx[len(idx)-1].Name
	var m map[string]struct {
		Mappings struct {
			Meta struct {
				Version string `json:"mappings_version"`
			} `json:"_meta"`
		} `json:"mappings"`
	}
	if err := c.call(ctx, esapi.IndicesGetMappingRequest{Index: []string{write}}, &m); err != nil {
		return "", err
	}
	return m[write].Mappings.Meta.Version, nil
}

// setupError says what to fix for the failures a user can fix.
func setupError(step string, err error) error {
	e := &SetupError{Step: step, Err: err}
	var re *ResponseError
	switch {
	case errors.Is(err, ErrNotElasticsearch):
		e.Fix = "point sinks.elasticsearch.addresses at an Elasticsearch cluster"
	case errors.As(err, &re) && re.Status == http.StatusUnauthorized:
		e.Fix = "check the credentials in sinks.elasticsearch (api_key, username and password, or service_token)"
	case errors.As(err, &re) && re.Status == http.StatusForbidden:
		e.Fix = "grant the user the cluster privileges monitor, manage_ilm and manage_index_templates and the index privileges create_doc, auto_configure and manage on " + IndexPattern +
			" (or install the templates once as an administrator and set sinks.elasticsearch.setup: false)"
	case errors.As(err, &re) && re.Status == http.StatusBadRequest && strings.HasPrefix(step, "index template"):
		e.Fix = "another index template matches " + IndexPattern + " with the same priority (200): change its priority or index_patterns, or set sinks.elasticsearch.setup: false and manage the templates yourself"
	case errors.As(err, &re) && !re.Transient():
		e.Fix = "see the cause above; dbprobe retries setup until it succeeds"
	}
	return e
}

// esDuration writes d in Elasticsearch time units.
func esDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
