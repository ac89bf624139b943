"""Dynamic number insertion: one pool number per web visitor, and the JSON endpoints the tag calls."""
