"""The fleet status page (issue 17): what each host shows of itself beyond engine_status
(:mod:`.details`, on the host) and the page with the reports it links (:mod:`.page`, on the
controller). Standard library only."""
