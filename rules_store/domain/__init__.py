"""Pure domain logic: catalog, events, holdings, churn, clocks, contact policy, alerts, offers, rules, segments, scoring."""
