"""Running the service: health and identity (`system`), Prometheus metrics (`metrics`), the
schedules (`schedules`) and runs (`runs`)."""
