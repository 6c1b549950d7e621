package portal

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sort"

	"easymail/internal/msglog"
	"easymail/internal/queue"
)

// maxBulk bounds the messages of one bulk action in the portal: a search matching more is to be narrowed
// (the API's POST /api/v1/queue/bulk has no such bound).
const maxBulk = 10000

// maxSelected bounds the messages ticked one by one.
const maxSelected = msglog.MaxLimit

// bulkAction is a bulk action of the messages page, with its label.
type bulkAction struct{ Value, Label string }

// bulkActions are queue.BulkActions with the labels of the message page's buttons.
var bulkActions = []bulkAction{{"retry", "Retry now"}, {"hold", "Hold"}, {"release", "Release"}, {"delete", "Delete from the queue"}}

// notInSearch is the skip reason of a ticked message that the search does not match (or the user may not see).
const notInSearch = "not found in this search"

func init() {
	area([]string{"bulk"}, map[string]string{
		"Action on the messages":                              "Action sur les messages",
		"Only those ticked below":                             "Seulement ceux cochés ci-dessous",
		"Every message matching this search (at most 10,000)": "Tous les messages correspondant à cette recherche (10 000 au plus)",
		"Apply":              "Appliquer",
		"Select":             "Sélection",
		"Bulk action":        "Action groupée",
		"Action":             "Action",
		"Selected":           "Sélectionnés",
		"Done":               "Faits",
		"Skipped":            "Ignorés",
		"Back to the search": "Retour à la recherche",
		notInSearch:          "introuvable dans cette recherche",
		"already held":       "déjà retenu",
		"held: a held message is not delivered (release it)": "retenu : un message retenu n'est pas distribué (libérez-le)",
		"not held":                              "non retenu",
		"quarantined (see easymail quarantine)": "en quarantaine (voir la quarantaine)",
		"nothing left to deliver (delivered or closed meanwhile)":                                           "plus rien à distribuer (distribué ou clos entre-temps)",
		"no longer in the queue":                                                                            "n'est plus dans la file",
		"Choose an action: retry, hold, release or delete.":                                                 "Choisissez une action : réessayer, retenir, libérer ou supprimer.",
		"Tick at least one message, or choose every message matching the search.":                           "Cochez au moins un message, ou choisissez tous les messages correspondant à la recherche.",
		"At most 1,000 messages may be ticked; choose every message matching the search instead.":           "Au plus 1 000 messages peuvent être cochés ; choisissez plutôt tous les messages correspondant à la recherche.",
		"Every message matching the search needs a search: give at least one field.":                        "Tous les messages correspondant à la recherche : il faut une recherche, donnez au moins un champ.",
		"More than 10,000 messages match this search: narrow it, or use the API (POST /api/v1/queue/bulk).": "Plus de 10 000 messages correspondent à cette recherche : affinez-la, ou utilisez l'API (POST /api/v1/queue/bulk).",
	}, nil)
}

// bulkView is the result page of a bulk action.
type bulkView struct {
	// Action and Label are the action and its button's label.
	Action, Label string
	// Selected counts the messages the action was asked for: those ticked, or those the search matched.
	Selected int
	queue.BulkOutcome
	// Back is the query of the search.
	Back string
}

// bulkMessages serves POST /messages/bulk: a queue action (retry, hold, release, delete) on the messages
// ticked on the search's page, or on every message the search matches (at most maxBulk), each under the
// queue's own rules (queue.Bulk, as the API's POST /queue/bulk). A ticked message is acted on only if the
// search, limited to what the user may see, matches it: any other id of the form is skipped. The answer
// and the audit record count what was done and skipped, and why.
func (s *server) bulkMessages(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	action := r.PostFormValue("action")
	if queue.BulkOp(s.o.Queue, action) == nil {
		return errorf(http.StatusUnprocessableEntity, "Choose an action: retry, hold, release or delete.")
	}
	fields, f, err := search(r.PostForm, rc)
	if err != nil {
		return err
	}
	given, back := map[string]string{}, url.Values{}
	for k, v := range fields {
		if v != "" {
			given[k] = v
			back.Set(k, v)
		}
	}
	all := r.PostFormValue("scope") == "all"
	var ids []string
	unmatched := 0
	if all {
		if len(given) == 0 {
			return errorf(http.StatusUnprocessableEntity, "Every message matching the search needs a search: give at least one field.")
		}
		if ids, err = s.searchIDs(r.Context(), f, maxBulk+1); err != nil {
			return err
		}
		if len(ids) > maxBulk {
			return errorf(http.StatusUnprocessableEntity, "More than 10,000 messages match this search: narrow it, or use the API (POST /api/v1/queue/bulk).")
		}
	} else {
		ticked := slices.Compact(slices.Sorted(slices.Values(r.PostForm["id"])))
		switch {
		case len(ticked) == 0:
			return errorf(http.StatusUnprocessableEntity, "Tick at least one message, or choose every message matching the search.")
		case len(ticked) > maxSelected:
			return errorf(http.StatusUnprocessableEntity, "At most 1,000 messages may be ticked; choose every message matching the search instead.")
		}
		for _, id := range ticked {
			one := f
			if one.QueueID != "" && one.QueueID != id {
				unmatched++
				continue
			}
			one.QueueID, one.Limit = id, 1
			res, err := msglog.Search(r.Context(), s.o.DB, one)
			if err != nil {
				return err
			}
			if len(res) == 0 {
				unmatched++
				continue
			}
			ids = append(ids, id)
		}
	}
	// Once started, the action runs to its end and is answered and audited even if the client hangs up.
	out, err := queue.Bulk(context.WithoutCancel(r.Context()), s.o.Queue, action, ids)
	if unmatched > 0 {
		out.Skipped = append(out.Skipped, queue.BulkSkipped{Reason: notInSearch, Count: unmatched})
		sort.Slice(out.Skipped, func(i, j int) bool { return out.Skipped[i].Reason < out.Skipped[j].Reason })
	}
	d := bulkView{Action: action, Label: action, Selected: len(ids) + unmatched, BulkOutcome: out, Back: back.Encode()}
	for _, a := range bulkActions {
		if a.Value == action {
			d.Label = a.Label
		}
	}
	rc.auditCustomer = f.Customer
	rc.auditDetail = map[string]any{"action": action, "every_match": all, "search": given, "selected": d.Selected,
		"changed": out.Changed, "skipped": out.Skipped}
	if err != nil {
		// What was done before the failure is recorded; the error page says what failed.
		s.audit(r, rc, rc.user(), http.StatusInternalServerError)
		return err
	}
	return s.render(w, r, rc, http.StatusOK, "bulk", "messages", "Bulk action", d)
}

// searchIDs returns the ids of the messages f matches, newest first, at most max.
func (s *server) searchIDs(ctx context.Context, f msglog.Filter, max int) ([]string, error) {
	var ids []string
	f.Limit = msglog.MaxLimit
	for len(ids) < max {
		page, err := msglog.Search(ctx, s.o.DB, f)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			ids = append(ids, m.ID)
		}
		if len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].ID
	}
	return ids[:min(len(ids), max)], nil
}
