from ledger_svc.main import main

main()
