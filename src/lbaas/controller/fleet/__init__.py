"""The controller's side of the fleet: its amphora hosts, placement and the overlay's lists."""
