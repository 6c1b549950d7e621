package portal

import (
	"net/http"
	"slices"
	"time"

	"easymail/internal/customer"
	"easymail/internal/incident"
	"easymail/internal/ippool"
	"easymail/internal/msglog"
)

// figures are the counts of one period of the dashboard.
type figures struct {
	Period                                          string
	Accepted, Delivered, Deferred, Bounced, Refused int64
}

func (f *figures) add(c msglog.StatCounts) {
	f.Accepted += c.Received
	f.Delivered += c.Delivered
	f.Deferred += c.Deferred
	f.Bounced += c.Bounced
	f.Refused += c.Rejected
}

type dashboardView struct {
	// AsOf is when the figures were computed (a snapshot of up to a minute for the staff).
	AsOf        time.Time
	Figures     []figures
	DayChart    any
	WeekChart   any
	Queue       *msglog.QueueSummary
	TopDeferred []msglog.StatSeries
	// Staff only: the IPs out of rotation, the scanners and the held customers.
	IPsOut    []ippool.IP
	Scanners  map[string]string
	Held      []customer.Customer
	Incidents []incident.Incident
	Customer  *customer.Customer
}

func (s *server) dashboard(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	cust, _ := rc.scope("")
	now := s.o.Now()
	figs, err := s.figuresFor(ctx, cust)
	if err != nil {
		return err
	}
	st := figs.week
	d := dashboardView{AsOf: figs.at}
	hour := figures{Period: rc.p.Sprintf("This hour")}
	day := figures{Period: rc.p.Sprintf("Last 24 hours")}
	week := figures{Period: rc.p.Sprintf("Last 7 days")}
	var buckets []msglog.StatBucket
	if len(st.Series) > 0 {
		buckets = st.Series[0].Buckets
	}
	thisHour := now.UTC().Truncate(time.Hour)
	var dayLabels []string
	var dayVals [4][]int64
	var weekLabels []string
	var weekVals [4][]int64
	for _, b := range buckets {
		week.add(b.StatCounts)
		if !b.Start.Before(thisHour) {
			hour.add(b.StatCounts)
		}
		vals := [4]int64{b.Received, b.Delivered, b.Deferred, b.Bounced + b.Rejected}
		if b.Start.After(now.Add(-24 * time.Hour)) {
			day.add(b.StatCounts)
			dayLabels = append(dayLabels, b.Start.UTC().Format("15h"))
			for i := range vals {
				dayVals[i] = append(dayVals[i], vals[i])
			}
		}
		label := b.Start.UTC().Format("01-02")
		if len(weekLabels) == 0 || weekLabels[len(weekLabels)-1] != label {
			weekLabels = append(weekLabels, label)
			for i := range weekVals {
				weekVals[i] = append(weekVals[i], 0)
			}
		}
		for i := range vals {
			weekVals[i][len(weekVals[i])-1] += vals[i]
		}
	}
	d.Figures = []figures{hour, day, week}
	names := []string{rc.p.Sprintf("accepted"), rc.p.Sprintf("delivered"), rc.p.Sprintf("deferred"), rc.p.Sprintf("bounced or refused")}
	classes := []string{"accepted", "delivered", "deferred", "failed"}
	mk := func(vals [4][]int64) []series {
		out := make([]series, 4)
		for i := range out {
			out[i] = series{Name: names[i], Class: classes[i], Values: vals[i]}
		}
		return out
	}
	d.DayChart = chart(rc.p.Sprintf("Last 24 hours, per hour (UTC)"), dayLabels, mk(dayVals))
	d.WeekChart = chart(rc.p.Sprintf("Last 7 days, per day (UTC)"), weekLabels, mk(weekVals))

	if d.Queue, err = msglog.SummarizeQueue(ctx, s.o.DB, cust, 10); err != nil {
		return err
	}
	for _, ser := range figs.top.Series {
		if ser.Total.Deferred > 0 {
			d.TopDeferred = append(d.TopDeferred, msglog.StatSeries{Key: ser.Key, Total: ser.Total})
		}
	}
	slices.SortFunc(d.TopDeferred, func(a, b msglog.StatSeries) int { return int(b.Total.Deferred - a.Total.Deferred) })
	d.TopDeferred = d.TopDeferred[:min(len(d.TopDeferred), 10)]

	if rc.staff() {
		if s.o.Pools != nil {
			for _, p := range s.o.Pools.PoolViews() {
				ips, err := s.o.Pools.IPViews(p.Name)
				if err != nil {
					return err
				}
				for _, ip := range ips {
					if ip.State != "active" && ip.State != "warming" {
						d.IPsOut = append(d.IPsOut, ip)
					}
				}
			}
		}
		if s.o.Scanners != nil {
			d.Scanners = s.o.Scanners()
		}
		list, err := s.o.Customers.List(ctx)
		if err != nil {
			return err
		}
		for _, c := range list {
			if c.Held {
				d.Held = append(d.Held, c)
			}
		}
	} else if d.Customer, err = s.o.Customers.Get(ctx, cust); err != nil {
		return err
	}
	if s.o.Incidents != nil {
		f := incident.Filter{Status: "open"}
		if !rc.staff() {
			f.CustomerID, f.Viewer = cust, cust
		}
		if d.Incidents, err = s.o.Incidents.List(ctx, f); err != nil {
			return err
		}
	}
	return s.render(w, r, rc, http.StatusOK, "dashboard", "dashboard", "Dashboard", d)
}
