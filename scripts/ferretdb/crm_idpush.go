package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// Added when the CRM builds FerretDB v1.24.2 (scripts/infra.sh).
//
// FerretDB pushes only `{_id: <value>}` down to SQLite; every other filter on
// _id scanned the whole collection (10,000 documents: about 600 ms). Two more
// shapes are narrowed here, as MongoDB's _id index narrows them:
//
//   - `{_id: {$in: [...]}}`: reading N documents by id in one query;
//   - `{_id: {$gt|$gte|$lt|$lte: "string", ...}}`: a range of string ids (the
//     scheduler's queue is keyed by due time, so "what is due" is a range).
//
// The handler applies the whole filter again to what comes back, as for every
// pushdown, so a clause here may return more than matches, never less.
const crmMaxIDsIn = 1000

// The range compares _id as an SQL value: `->>` gives a string id unescaped,
// and SQLite compares text bytewise, as Go and MongoDB compare strings. Ids of
// other types (numbers, dates, objects) never match a string bound; they may
// come back (numbers sort below text) and are filtered out by the handler.
// The JSON text the _id index holds (`->`) would not do: a stored escape
// (`\u003c` for `<`) sorts differently from the character it stands for.
const crmIDValue = metadata.DefaultColumn + "->>'_id'"

var crmIDValueIndexes sync.Map

func crmIDClause(ctx context.Context, db *fsql.DB, meta *metadata.Collection, filter *types.Document) (string, []any) {
	if clause, args := crmIDInClause(filter); clause != "" {
		return clause, args
	}

	clause, args := crmIDRangeClause(filter)
	if clause == "" {
		return "", nil
	}

	// The index is made on first use, once per collection (a dropped and
	// made again collection has a new UUID, and lost the index with its
	// table). Without it the clause is still right, only slow.
	if _, done := crmIDValueIndexes.Load(meta.Settings.UUID); !done {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`,
			meta.TableName+"_crm_id_value", meta.TableName, crmIDValue)
		if _, err := db.ExecContext(ctx, q); err == nil {
			crmIDValueIndexes.Store(meta.Settings.UUID, true)
		}
	}

	return clause, args
}

func crmIDCondition(filter *types.Document) (*types.Document, bool) {
	v, err := filter.Get("_id")
	if err != nil {
		return nil, false
	}

	cond, ok := v.(*types.Document)

	return cond, ok && cond.Len() >= 1
}

func crmIDInClause(filter *types.Document) (string, []any) {
	cond, ok := crmIDCondition(filter)
	if !ok || cond.Len() != 1 {
		return "", nil
	}

	in, err := cond.Get("$in")
	if err != nil {
		return "", nil
	}

	ids, ok := in.(*types.Array)
	if !ok || ids.Len() == 0 || ids.Len() > crmMaxIDsIn {
		return "", nil
	}

	marks := make([]string, 0, ids.Len())
	args := make([]any, 0, ids.Len())

	for i := 0; i < ids.Len(); i++ {
		id := must.NotFail(ids.Get(i))
		switch id.(type) {
		case string, types.ObjectID:
		default:
			return "", nil
		}

		marks = append(marks, "?")
		args = append(args, string(must.NotFail(sjson.MarshalSingleValue(id))))
	}

	return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, strings.Join(marks, ", ")), args
}

var crmRangeOps = map[string]string{"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

func crmIDRangeClause(filter *types.Document) (string, []any) {
	cond, ok := crmIDCondition(filter)
	if !ok || cond.Len() > 2 {
		return "", nil
	}

	var terms []string
	var args []any

	for _, op := range cond.Keys() {
		sqlOp, known := crmRangeOps[op]
		if !known {
			return "", nil
		}

		bound, ok := must.NotFail(cond.Get(op)).(string)
		if !ok {
			return "", nil
		}

		terms = append(terms, fmt.Sprintf("%s %s ?", crmIDValue, sqlOp))
		args = append(args, bound)
	}

	return ` WHERE ` + strings.Join(terms, " AND "), args
}
