package esfake

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
)

// do sends a request and decodes the JSON answer.
func do(t *testing.T, s *Server, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s answered non-JSON %q", method, path, b)
		}
	}
	return res.StatusCode, res.Header, out
}

func items(t *testing.T, ans map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, it := range ans["items"].([]any) {
		for _, v := range it.(map[string]any) {
			out = append(out, v.(map[string]any))
		}
	}
	return out
}

func errType(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

func TestProductHeaderAndInfo(t *testing.T) {
	s := New(Options{})
	t.Cleanup(s.Close)
	for _, path := range []string{"/", "/nosuch/_search"} {
		_, h, _ := do(t, s, http.MethodGet, path, "")
		if got := h.Get("X-Elastic-Product"); got != "Elasticsearch" {
			t.Errorf("GET %s: X-Elastic-Product = %q; want Elasticsearch on every answer", path, got)
		}
	}
	_, _, info := do(t, s, http.MethodGet, "/", "")
	if info["tagline"] != "You Know, for Search" || info["version"].(map[string]any)["number"] != Version {
		t.Errorf("GET / = %v; want the Elasticsearch info document", info)
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{s.URL}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := es.Info()
	if err != nil {
		t.Fatalf("go-elasticsearch Info = %v; want the product check to pass", err)
	}
	res.Body.Close()

	s.SetProductHeader(false)
	es2, _ := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{s.URL}})
	if _, err := es2.Info(); err == nil {
		t.Error("go-elasticsearch Info without the product header = nil error; want the client to refuse the server")
	}
}

func TestBulkIntoADataStream(t *testing.T) {
	s := New(Options{Now: func() time.Time { return time.Date(2026, 3, 7, 10, 0, 0, 0, time.UTC) }})
	t.Cleanup(s.Close)
	body := `{"create":{"_id":"a"}}
{"@timestamp":"2026-03-07T10:00:00Z","n":1}
{"create":{"_id":"a"}}
{"@timestamp":"2026-03-07T10:00:01Z","n":2}
{"index":{"_id":"b"}}
{"@timestamp":"2026-03-07T10:00:02Z"}
{"create":{"_id":"c"}}
{"n":3}
{"create":{"_id":"d"}}
{"@timestamp":"2026-03-07T10:00:03Z"}
`
	status, _, ans := do(t, s, http.MethodPost, "/logs-app-default/_bulk", body)
	if status != http.StatusOK || ans["errors"] != true {
		t.Fatalf("_bulk = %d %v; want 200 with errors true", status, ans)
	}
	its := items(t, ans)
	want := []struct {
		status  float64
		errType string
	}{
		{201, ""},
		{409, "version_conflict_engine_exception"},
		{400, "illegal_argument_exception"},
		{400, "document_parsing_exception"},
		{201, ""},
	}
	if len(its) != len(want) {
		t.Fatalf("%d items; want %d", len(its), len(want))
	}
	for i, w := range want {
		if its[i]["status"] != w.status || errType(its[i]) != w.errType {
			t.Errorf("item %d = %v; want status %v %s", i, its[i], w.status, w.errType)
		}
	}
	if got := its[0]["_index"]; got != ".ds-logs-app-default-2026.03.07-000001" {
		t.Errorf("_index = %v; want the backing index .ds-logs-app-default-2026.03.07-000001", got)
	}
	if n := s.Count("logs-app-default"); n != 2 {
		t.Errorf("Count = %d; want 2", n)
	}

	status, _, ans = do(t, s, http.MethodPost, "/_bulk", `{"create":{"_index":"x"}}`+"\n"+`{}`)
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(ans["error"]), "terminated by a newline") {
		t.Errorf("_bulk without a final newline = %d %v; want 400", status, ans)
	}

	// A rollover starts a new backing index, which knows nothing of the
	// old one's _ids, as in Elasticsearch.
	do(t, s, http.MethodPost, "/logs-app-default/_rollover", "")
	_, _, ans = do(t, s, http.MethodPost, "/logs-app-default/_bulk?filter_path=items.*.status,items.*._index", `{"create":{"_id":"a"}}`+"\n"+`{"@timestamp":"2026-03-07T11:00:00Z"}`+"\n")
	its = items(t, ans)
	if its[0]["status"] != 201.0 || its[0]["_index"] != ".ds-logs-app-default-2026.03.07-000002" || its[0]["_id"] != nil {
		t.Errorf("create after rollover = %v; want 201 into generation 2, filtered to status and _index", its[0])
	}
	if _, ok := ans["took"]; ok {
		t.Errorf("filter_path kept took: %v", ans)
	}
	if got := s.IDCounts("logs-app-default")["a"]; got != 2 {
		t.Errorf("_id a stored %d times across backing indices; want 2", got)
	}
}

func TestMappingsRefuseMistypedValues(t *testing.T) {
	s := New(Options{})
	t.Cleanup(s.Close)
	do(t, s, http.MethodPut, "/_component_template/m", `{"template":{"mappings":{"dynamic":"strict","properties":{"@timestamp":{"type":"date"},"n":{"type":"long"},"ok":{"type":"boolean"},"ip":{"type":"ip"},"o":{"properties":{"k":{"type":"keyword"}}}}}}}`)
	if status, _, ans := do(t, s, http.MethodPut, "/_index_template/t", `{"index_patterns":["logs-typed-*"],"priority":200,"data_stream":{},"composed_of":["m"]}`); status != 200 {
		t.Fatalf("put template = %d %v", status, ans)
	}
	tests := []struct {
		doc, want string
	}{
		{`{"@timestamp":"2026-01-01T00:00:00Z","n":"12","ok":true,"ip":"10.0.0.1","o":{"k":"v"}}`, ""},
		{`{"@timestamp":"2026-01-01T00:00:00Z","n":"many"}`, "document_parsing_exception"},
		{`{"@timestamp":"yesterday"}`, "document_parsing_exception"},
		{`{"@timestamp":"2026-01-01T00:00:00Z","ip":"not-an-ip"}`, "document_parsing_exception"},
		{`{"@timestamp":"2026-01-01T00:00:00Z","o":"flat"}`, "document_parsing_exception"},
		{`{"@timestamp":"2026-01-01T00:00:00Z","extra":1}`, "strict_dynamic_mapping_exception"},
	}
	for i, tt := range tests {
		_, _, ans := do(t, s, http.MethodPost, "/logs-typed-x/_bulk", fmt.Sprintf(`{"create":{"_id":"%d"}}`, i)+"\n"+tt.doc+"\n")
		if got := errType(items(t, ans)[0]); got != tt.want {
			t.Errorf("document %s: error %q; want %q", tt.doc, got, tt.want)
		}
	}
}

func TestTemplatesAreCheckedAsElasticsearchDoes(t *testing.T) {
	s := New(Options{})
	t.Cleanup(s.Close)
	status, _, ans := do(t, s, http.MethodPut, "/_index_template/a", `{"index_patterns":["logs-x-*"],"priority":100,"data_stream":{}}`)
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(ans), "same priority [100]") {
		t.Errorf("template overlapping the built-in logs-*-* at its priority = %d %v; want 400", status, ans)
	}
	status, _, ans = do(t, s, http.MethodPut, "/_index_template/b", `{"index_patterns":["logs-x-*"],"priority":200,"composed_of":["nosuch"]}`)
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(ans), "nosuch") {
		t.Errorf("template with a missing component = %d %v; want 400 naming it", status, ans)
	}
	if status, _, _ := do(t, s, http.MethodPut, "/_index_template/c", `{"index_patterns":["logs-x-*"],"priority":200,"data_stream":{}}`); status != http.StatusOK {
		t.Errorf("valid template = %d; want 200", status)
	}
	status, _, ans = do(t, s, http.MethodPut, "/_data_stream/logs-x-default", "")
	if status != http.StatusOK {
		t.Fatalf("create data stream = %d %v", status, ans)
	}
	status, _, ans = do(t, s, http.MethodPut, "/_data_stream/logs-x-default", "")
	if status != http.StatusBadRequest || errType(ans) != "resource_already_exists_exception" {
		t.Errorf("create it again = %d %v; want 400 resource_already_exists_exception", status, ans)
	}
}

func TestPointInTimeSearchAfterPagesEveryDocumentOnce(t *testing.T) {
	s := New(Options{})
	t.Cleanup(s.Close)
	var b strings.Builder
	for i := range 25 {
		// Pairs share a timestamp: the tiebreaker decides.
		fmt.Fprintf(&b, "{\"create\":{\"_id\":\"d%d\"}}\n{\"@timestamp\":\"2026-01-01T00:00:%02dZ\",\"run\":\"r%d\"}\n", i, i/2, i%2)
	}
	do(t, s, http.MethodPost, "/logs-p-default/_bulk", b.String())
	_, _, pit := do(t, s, http.MethodPost, "/logs-p-*/_pit?keep_alive=1m", "")
	id, _ := pit["id"].(string)
	if id == "" {
		t.Fatalf("open PIT = %v", pit)
	}
	// Documents written after the PIT opened are not in it.
	do(t, s, http.MethodPost, "/logs-p-default/_bulk", "{\"create\":{\"_id\":\"late\"}}\n{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"run\":\"r0\"}\n")
	if status, _, _ := do(t, s, http.MethodPost, "/logs-p-default/_search", `{"pit":{"id":"`+id+`"}}`); status != http.StatusBadRequest {
		t.Errorf("search with a PIT and an index in the path = %d; want 400", status)
	}
	seen := map[string]bool{}
	var after []any
	var lastTS float64
	for page := 0; ; page++ {
		q := map[string]any{"size": 4, "pit": map[string]any{"id": id, "keep_alive": "1m"},
			"query": map[string]any{"term": map[string]any{"run": "r0"}},
			"sort":  []any{map[string]any{"@timestamp": "asc"}}}
		if after != nil {
			q["search_after"] = after
		}
		body, _ := json.Marshal(q)
		status, _, ans := do(t, s, http.MethodPost, "/_search", string(body))
		if status != http.StatusOK {
			t.Fatalf("page %d = %d %v", page, status, ans)
		}
		hits := ans["hits"].(map[string]any)["hits"].([]any)
		if len(hits) == 0 {
			break
		}
		for _, h := range hits {
			hit := h.(map[string]any)
			sortVals := hit["sort"].([]any)
			if len(sortVals) != 2 {
				t.Fatalf("hit sort = %v; want @timestamp and the implicit _shard_doc", sortVals)
			}
			if ts := sortVals[0].(float64); ts < lastTS {
				t.Errorf("hit at %v after one at %v; want ascending", ts, lastTS)
			} else {
				lastTS = ts
			}
			id := hit["_id"].(string)
			if seen[id] {
				t.Errorf("%s returned twice", id)
			}
			seen[id] = true
			after = sortVals
		}
	}
	if len(seen) != 13 || seen["late"] {
		t.Errorf("PIT pages returned %d documents (late included: %v); want the 13 of run r0 present when it opened", len(seen), seen["late"])
	}
	status, _, ans := do(t, s, http.MethodDelete, "/_pit", `{"id":"`+id+`"}`)
	if status != http.StatusOK || ans["num_freed"] != 1.0 {
		t.Errorf("close PIT = %d %v; want num_freed 1", status, ans)
	}
	if status, _, _ := do(t, s, http.MethodPost, "/_search", `{"pit":{"id":"`+id+`"}}`); status != http.StatusNotFound {
		t.Errorf("search with a closed PIT = %d; want 404", status)
	}
}

func TestFaults(t *testing.T) {
	s := New(Options{})
	t.Cleanup(s.Close)
	client := &http.Client{Timeout: 2 * time.Second}
	get := func() (int, error) {
		res, err := client.Get(s.URL + "/")
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	s.SetDown(Refuse)
	if _, err := get(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("request while refusing = %v; want connection refused", err)
	}
	s.SetDown(Drop)
	if _, err := get(); err == nil {
		t.Error("request while dropping = nil error; want a failure")
	}
	s.SetDown(Up)
	if st, err := get(); err != nil || st != 200 {
		t.Errorf("request after coming back = %d, %v; want 200", st, err)
	}
	s.FailRequests(http.StatusServiceUnavailable, 2)
	for i, want := range []int{503, 503, 200} {
		if st, err := get(); err != nil || st != want {
			t.Errorf("request %d = %d, %v; want %d", i, st, err, want)
		}
	}
	s.ResetBulk(1)
	res, err := client.Post(s.URL+"/logs-r-default/_bulk", "application/json",
		strings.NewReader("{\"create\":{\"_id\":\"x\"}}\n{\"@timestamp\":\"2026-01-01T00:00:00Z\"}\n"))
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Error("_bulk with a reset answer read without error; want the connection cut")
	}
	if n := s.Count("logs-r-default"); n != 1 {
		t.Errorf("documents stored by the cut request = %d; want 1 (stored before the answer broke)", n)
	}
}

func TestGzipBodies(t *testing.T) {
	s := New(Options{})
	t.Cleanup(s.Close)
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	io.WriteString(z, "{\"create\":{\"_id\":\"g\"}}\n{\"@timestamp\":\"2026-01-01T00:00:00Z\"}\n")
	z.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/logs-g-default/_bulk", &b)
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || s.Count("logs-g-default") != 1 {
		t.Errorf("gzip _bulk = %d, %d stored; want 200, 1", res.StatusCode, s.Count("logs-g-default"))
	}
}
