"""The rule-coverage audit over the whole case space (`check`) and its HTML report (`report`)."""
