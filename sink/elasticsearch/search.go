package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/dbprobe/dbprobe/event"
)

// SearchIndex is what reports search by default: every dbprobe data
// stream, whatever its namespace.
const SearchIndex = IndexPattern

// Paging of Search: events per page, and how long the point in time is kept
// between pages.
const (
	searchPage      = 1000
	searchKeepAlive = "2m"
)

// Search calls fn for every event of run runID stored in index (a data
// stream, index or pattern; "" means SearchIndex), from every observer, in
// order of @timestamp, then event.sequence. It reads through a point in
// time with search_after, so the events form one consistent snapshot and
// memory holds one page whatever the run's size. It stops at the first
// error fn returns and returns it. An index that does not exist is an
// error; a pattern matching nothing yields no events.
func (c *Client) Search(ctx context.Context, index, runID string, fn func(*event.Event) error) error {
	if index == "" {
		index = SearchIndex
	}
	var pit struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, esapi.OpenPointInTimeRequest{Index: strings.Split(index, ","), KeepAlive: searchKeepAlive}, &pit); err != nil {
		return fmt.Errorf("open point in time on %s: %w", index, err)
	}
	defer func() {
		// Free the point in time even when ctx is done; its keep-alive
		// would free it anyway, later.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		body, _ := json.Marshal(map[string]string{"id": pit.ID})
		_ = c.call(cctx, esapi.ClosePointInTimeRequest{Body: bytes.NewReader(body)}, nil)
	}()
	type query struct {
		Size           int               `json:"size"`
		Query          any               `json:"query"`
		PIT            map[string]string `json:"pit"`
		Sort           []any             `json:"sort"`
		SearchAfter    []json.RawMessage `json:"search_after,omitempty"`
		TrackTotalHits bool              `json:"track_total_hits"`
	}
	q := query{
		Size:  searchPage,
		Query: map[string]any{"bool": map[string]any{"filter": []any{map[string]any{"term": map[string]any{"dbprobe.run_id": runID}}}}},
		Sort: []any{
			map[string]any{"@timestamp": map[string]string{"order": "asc"}},
			map[string]any{"event.sequence": map[string]string{"order": "asc"}},
		},
	}
	pitID := pit.ID
	for {
		q.PIT = map[string]string{"id": pitID, "keep_alive": searchKeepAlive}
		body, err := json.Marshal(q)
		if err != nil {
			return fmt.Errorf("encode search: %w", err)
		}
		var page struct {
			PITID string `json:"pit_id"`
			Hits  struct {
				Hits []struct {
					Source json.RawMessage   `json:"_source"`
					Sort   []json.RawMessage `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := c.call(ctx, esapi.SearchRequest{Body: bytes.NewReader(body)}, &page); err != nil {
			return fmt.Errorf("search %s: %w", index, err)
		}
		for _, h := range page.Hits.Hits {
			var e event.Event
			if err := json.Unmarshal(h.Source, &e); err != nil {
				return fmt.Errorf("decode event from %s: %w", index, err)
			}
			if err := fn(&e); err != nil {
				return err
			}
		}
		hits := page.Hits.Hits
		if len(hits) < searchPage {
			return nil
		}
		q.SearchAfter = hits[len(hits)-1].Sort
		if page.PITID != "" {
			pitID = page.PITID
		}
		if len(q.SearchAfter) == 0 {
			return errors.New("elasticsearch returned hits without sort values; cannot page")
		}
	}
}
