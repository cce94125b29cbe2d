"""Every patch of Faust's or the embedded broker's behaviour, and only here."""
