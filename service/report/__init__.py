"""The park's report: exchanges by stage, realised savings, participation, laid out against
the criteria parks are assessed on; CSV, printable HTML and PDF, in English and Vietnamese."""
