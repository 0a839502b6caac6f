"""The metadata service: the OpenStack and EC2 metadata layouts for guests, its proxy and the config drive."""
