"""RouterOS traffic gateway: one poll loop per router, one broadcast hub, many viewers."""
