"""Reports people look at: `report` (a dataset page or a training-run page), `explain` (what a trained
model looks at), and `page`, the HTML and figure helpers both share. Import the module you need:

    from artdata.reports.report import dataset_report, run_report, report
    from artdata.reports.explain import explain
"""
