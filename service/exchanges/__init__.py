"""Exchanges from idea to verified savings: the pipeline of stages, a registered exchange's
metered transfer and dated prices, realised savings measured from meters (IPMVP Option B),
and the park's report against Viet Nam's eco-industrial-park criteria."""
