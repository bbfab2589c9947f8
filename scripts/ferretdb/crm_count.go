package handler

// Added when the CRM builds FerretDB v1.24.2 (scripts/infra.sh).
//
// pymongo's count_documents(filter) sends the aggregation
// [{$match: filter}, ({$skip: n},) ({$limit: n},) {$group: {_id: 1, n: {$sum: 1}}}],
// which FerretDB answered by reading every matching document (every document
// of the collection, before crm_index.go). When the SQLite backend can count
// the filter's matches in an index (crm_index.go: every condition exactly
// what its key ranges select), the answer is that count, with no document
// read. Otherwise the aggregation runs as before.

import (
	"context"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

type crmCountShape struct {
	filter      *types.Document
	id          any
	field       string
	skip, limit int64
}

// crmCountPipeline recognises count_documents' pipeline.
func crmCountPipeline(stages []any) (*crmCountShape, bool) {
	shape := &crmCountShape{filter: must.NotFail(types.NewDocument())}
	if len(stages) == 0 {
		return nil, false
	}
	for i, st := range stages {
		d, ok := st.(*types.Document)
		if !ok || d.Len() != 1 {
			return nil, false
		}
		name := d.Keys()[0]
		arg := must.NotFail(d.Get(name))
		last := i == len(stages)-1
		switch {
		case name == "$match" && i == 0 && !last:
			f, ok := arg.(*types.Document)
			if !ok {
				return nil, false
			}
			shape.filter = f
		case (name == "$skip" || name == "$limit") && !last:
			n, ok := crmInt(arg)
			if !ok || n < 0 || (name == "$limit" && n == 0) {
				return nil, false
			}
			if name == "$skip" {
				if shape.limit != 0 {
					return nil, false
				}
				shape.skip = n
			} else {
				shape.limit = n
			}
		case name == "$group" && last:
			g, ok := arg.(*types.Document)
			if !ok || g.Len() != 2 || g.Keys()[0] != "_id" {
				return nil, false
			}
			shape.id = must.NotFail(g.Get("_id"))
			switch shape.id.(type) {
			case int32, int64, float64, types.NullType:
			default:
				return nil, false // a field path or an expression groups
			}
			shape.field = g.Keys()[1]
			sum, ok := must.NotFail(g.Get(shape.field)).(*types.Document)
			if !ok || sum.Len() != 1 || sum.Keys()[0] != "$sum" {
				return nil, false
			}
			if one, ok := crmInt(must.NotFail(sum.Get("$sum"))); !ok || one != 1 {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return shape, shape.field != ""
}

func crmInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case float64:
		if v == float64(int64(v)) {
			return int64(v), true
		}
	}
	return 0, false
}

// crmCountWindow applies a count's skip and limit to the number of matches.
func crmCountWindow(n, skip, limit int64) int64 {
	n = max(0, n-skip)
	if limit > 0 {
		n = min(n, limit)
	}
	return n
}

// crmCountAggregate answers a count_documents pipeline from an index;
// ok is false when the backend cannot count the filter exactly.
func crmCountAggregate(ctx context.Context, c backends.Collection, shape *crmCountShape) (types.DocumentsIterator, bool, error) {
	qp := &backends.QueryParams{Filter: shape.filter, CRMCount: true}
	res, err := c.Query(ctx, qp)
	if err != nil {
		return nil, false, err
	}
	res.Iter.Close()
	if !res.CRMCounted {
		return nil, false, nil
	}
	var docs []*types.Document
	if n := crmCountWindow(res.CRMN, shape.skip, shape.limit); n > 0 {
		var out any = int32(n)
		if n > 1<<31-1 {
			out = n
		}
		docs = append(docs, must.NotFail(types.NewDocument("_id", shape.id, shape.field, out)))
	}
	return iterator.Values(iterator.ForSlice(docs)), true, nil
}
