// Package rdsfake is a local stand-in for the RDS API (query protocol,
// XML) for tests: it answers DescribeEvents and DescribeBlueGreenDeployments
// with the response shapes AWS documents, from what the test put in it, and
// fails like a throttled API while told to. No test needs AWS.
package rdsfake

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Fake is a local stand-in for the RDS API (query protocol, XML): it
// answers DescribeEvents and DescribeBlueGreenDeployments with the shapes
// AWS documents, from what the test put in it, and fails while failing is
// set, as a throttled API does.
type Fake struct {
	URL string
	srv *httptest.Server
	key string
	mu  sync.Mutex
	// events per "type/id"; each is the XML of one <Event>.
	events   map[string][]string
	bgStatus string
	failing  bool
	requests []url.Values
}

// New starts a fake that accepts requests signed with accessKey and stops
// it when the test ends. Point the SDK at Fake.URL (BaseEndpoint, or
// AWS_ENDPOINT_URL_RDS).
func New(t testing.TB, accessKey string) *Fake {
	f := &Fake{key: accessKey, events: map[string][]string{}}
	f.srv = httptest.NewServer(f)
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// Add records an event of the source typ/id, dated date (RFC 3339).
func (f *Fake) Add(typ, id, date, msg string, categories ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cats strings.Builder
	for _, c := range categories {
		fmt.Fprintf(&cats, "<EventCategory>%s</EventCategory>", c)
	}
	f.events[typ+"/"+id] = append(f.events[typ+"/"+id], fmt.Sprintf(`
      <Event>
        <Message>%s</Message>
        <SourceType>%s</SourceType>
        <EventCategories>%s</EventCategories>
        <Date>%s</Date>
        <SourceIdentifier>%s</SourceIdentifier>
        <SourceArn>arn:aws:rds:eu-west-1:123456789012:cluster:%s</SourceArn>
      </Event>`, msg, typ, cats.String(), date, id, id))
}

// SetBlueGreenStatus sets the status DescribeBlueGreenDeployments returns.
func (f *Fake) SetBlueGreenStatus(s string) { f.mu.Lock(); f.bgStatus = s; f.mu.Unlock() }

// SetFailing makes every request fail as a throttled one does.
func (f *Fake) SetFailing(on bool) { f.mu.Lock(); f.failing = on; f.mu.Unlock() }

// Requests returns the form of every request answered so far.
func (f *Fake) Requests() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.requests...)
}

// ServeHTTP answers one RDS API request.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost || form.Get("Version") != "2014-10-31" ||
		!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+f.key+"/") {
		http.Error(w, "not an RDS query API request", http.StatusBadRequest)
		return
	}
	f.requests = append(f.requests, form)
	w.Header().Set("Content-Type", "text/xml")
	if f.failing {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>0f1e2d3c</RequestId></ErrorResponse>`)
		return
	}
	switch form.Get("Action") {
	case "DescribeEvents":
		if form.Get("StartTime") == "" {
			http.Error(w, "dbprobe must bound its question with StartTime", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `<DescribeEventsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeEventsResult>
    <Events>%s
    </Events>
  </DescribeEventsResult>
  <ResponseMetadata><RequestId>95d1d8ba-0000-4000-8000-000000000000</RequestId></ResponseMetadata>
</DescribeEventsResponse>`, strings.Join(f.events[form.Get("SourceType")+"/"+form.Get("SourceIdentifier")], ""))
	case "DescribeBlueGreenDeployments":
		fmt.Fprintf(w, `<DescribeBlueGreenDeploymentsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeBlueGreenDeploymentsResult>
    <BlueGreenDeployments>
      <member>
        <BlueGreenDeploymentIdentifier>%s</BlueGreenDeploymentIdentifier>
        <BlueGreenDeploymentName>orders-upgrade</BlueGreenDeploymentName>
        <Source>arn:aws:rds:eu-west-1:123456789012:cluster:orders</Source>
        <Target>arn:aws:rds:eu-west-1:123456789012:cluster:orders-green-abc123</Target>
        <SwitchoverDetails>
          <member>
            <SourceMember>arn:aws:rds:eu-west-1:123456789012:cluster:orders</SourceMember>
            <TargetMember>arn:aws:rds:eu-west-1:123456789012:cluster:orders-green-abc123</TargetMember>
            <Status>%s</Status>
          </member>
        </SwitchoverDetails>
        <Tasks><member><Name>CREATING_READ_REPLICA_OF_SOURCE</Name><Status>COMPLETED</Status></member></Tasks>
        <Status>%s</Status>
        <CreateTime>2026-03-14T14:00:00Z</CreateTime>
      </member>
    </BlueGreenDeployments>
  </DescribeBlueGreenDeploymentsResult>
  <ResponseMetadata><RequestId>95d1d8ba-0000-4000-8000-000000000001</RequestId></ResponseMetadata>
</DescribeBlueGreenDeploymentsResponse>`, form.Get("BlueGreenDeploymentIdentifier"), f.bgStatus, f.bgStatus)
	default:
		http.Error(w, "unexpected action "+form.Get("Action"), http.StatusBadRequest)
	}
}
